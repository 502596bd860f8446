"""How provider failures become Temporal errors (through both adapters and directly), and prices."""

from datetime import timedelta

import anthropic
import httpx2
import openai
import pytest
from temporalio.exceptions import ApplicationError

from keel.errors import KeelUserError
from keel.net import free_port
from keel.schemas.model import Usage as TokenUsage
from keel.schemas.routing import Deployment, Price
from keel.testing.replies import Reply
from keel.testing.server import WireServer
from tests.providers.support import KEY_ENV, PRICE, SECRET, Make, ask
from tools.models.errors import (
    NON_RETRYABLE_TYPES,
    RETRYABLE_TYPES,
    missing_api_key,
    provider_error,
)
from tools.models.prices import PRICES, price_for

# --- Faults ---------------------------------------------------------------------------

FAULTS = [
    pytest.param(Reply.rate_limited(retry_after=2), "RateLimited", True, 429, id="429"),
    pytest.param(Reply.error(500), "ProviderUnavailable", True, 500, id="500"),
    pytest.param(Reply.error(503), "ProviderUnavailable", True, 503, id="503"),
    pytest.param(Reply.error(529), "ProviderUnavailable", True, 529, id="529-overloaded"),
    pytest.param(Reply.error(400), "BadRequest", False, 400, id="400"),
    pytest.param(
        Reply.error(400, "This model's maximum context length is 128000 tokens."),
        "ContextLengthExceeded",
        False,
        400,
        id="400-context-openai",
    ),
    pytest.param(
        Reply.error(400, "prompt is too long: 210000 tokens > 200000 maximum"),
        "ContextLengthExceeded",
        False,
        400,
        id="400-context-anthropic",
    ),
    pytest.param(
        Reply.error(400, "The response was filtered due to the content management policy."),
        "ContentFiltered",
        False,
        400,
        id="400-content-filter",
    ),
    pytest.param(
        Reply.error(401, f"Incorrect API key provided: {SECRET}"),
        "AuthenticationFailed",
        False,
        401,
        id="401",
    ),
    pytest.param(Reply.error(403), "PermissionDenied", False, 403, id="403"),
    pytest.param(Reply.error(404), "ModelNotFound", False, 404, id="404"),
    pytest.param(Reply.malformed(), "MalformedResponse", True, None, id="malformed-json"),
    pytest.param(Reply.malformed('{"id": 1}'), "MalformedResponse", True, None, id="wrong-shape"),
    pytest.param(Reply.cut(after=0), "ProviderUnreachable", True, None, id="dropped"),
]


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
@pytest.mark.parametrize(("reply", "kind", "retryable", "status"), FAULTS)
async def test_faults_are_classified(
    make: Make,
    server: WireServer,
    protocol: str,
    reply: Reply,
    kind: str,
    retryable: bool,
    status: int | None,
) -> None:
    server.push(reply)

    with pytest.raises(ApplicationError) as caught:
        await make(protocol).complete(ask(), PRICE)

    error = caught.value
    assert (error.type, error.non_retryable) == (kind, not retryable)
    assert kind in (RETRYABLE_TYPES if retryable else NON_RETRYABLE_TYPES)
    assert error.next_retry_delay == (timedelta(seconds=2) if status == 429 else None)
    deployment = "ant" if protocol == "anthropic" else "oai"
    assert error.message.startswith(f"{deployment}:")
    if status is not None:
        assert f"HTTP {status}" in str(error)
    assert SECRET not in str(error) and "do-not-print" not in repr(error)
    assert error.__cause__ is None
    assert len(server.requests) == 1  # max_retries=0: Temporal, not the SDK, retries


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_slow_reply_times_out(make: Make, server: WireServer, protocol: str) -> None:
    server.push(Reply.slow(3.0, Reply(text="late")))

    with pytest.raises(ApplicationError) as caught:
        await make(protocol, timeout_s=0.3).complete(ask(), PRICE)

    assert (caught.value.type, caught.value.non_retryable) == ("ProviderTimeout", False)


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_unreachable_server(make: Make, protocol: str) -> None:
    adapter = make(protocol, base_url=f"http://127.0.0.1:{free_port()}/v1")

    with pytest.raises(ApplicationError) as caught:
        await adapter.complete(ask(), PRICE)

    assert (caught.value.type, caught.value.non_retryable) == ("ProviderUnreachable", False)


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_missing_key_names_the_variable(
    make: Make, server: WireServer, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    monkeypatch.delenv(KEY_ENV)

    with pytest.raises(ApplicationError) as caught:
        await make(protocol).complete(ask(), PRICE)

    assert (caught.value.type, caught.value.non_retryable) == ("MissingApiKey", True)
    assert KEY_ENV in str(caught.value)
    assert server.requests == []

    monkeypatch.setenv(KEY_ENV, "   ")
    with pytest.raises(ApplicationError, match=KEY_ENV):
        await make(protocol).complete(ask(), PRICE)


# --- Error mapping details and prices -------------------------------------------------


def _status_error(status: int, headers: dict[str, str], body: object) -> openai.APIStatusError:
    request = httpx2.Request("POST", "https://api.openai.com/v1/chat/completions")
    response = httpx2.Response(status, headers=headers, request=request)
    errors = {429: openai.RateLimitError, 400: openai.BadRequestError}
    return errors[status]("Error code", response=response, body=body)


def test_retry_after_ms_wins_and_http_dates_are_read() -> None:
    ms = provider_error(
        _status_error(429, {"retry-after-ms": "1500", "retry-after": "9"}, None), "d"
    )
    assert ms.next_retry_delay == timedelta(milliseconds=1500)

    date = provider_error(
        _status_error(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None), "d"
    )
    assert date.type == "RateLimited" and date.next_retry_delay is None  # in the past

    none = provider_error(_status_error(429, {}, None), "d")
    assert none.next_retry_delay is None and "retry after" not in str(none)


def test_quota_and_error_codes() -> None:
    quota = provider_error(
        _status_error(429, {}, {"type": "insufficient_quota", "code": "insufficient_quota"}), "d"
    )
    assert (quota.type, quota.non_retryable) == ("QuotaExceeded", True)

    context = provider_error(_status_error(400, {}, {"code": "context_length_exceeded"}), "d")
    assert context.type == "ContextLengthExceeded"
    assert "context_length_exceeded" in str(context)


def test_transport_errors_and_unknowns() -> None:
    request = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")
    timeout = provider_error(anthropic.APITimeoutError(request=request), "d")
    assert timeout.type == "ProviderTimeout"
    assert provider_error(httpx2.ConnectError("refused"), "d").type == "ProviderUnreachable"
    unknown = provider_error(RuntimeError(SECRET), "d")
    assert (unknown.type, unknown.non_retryable) == ("ProviderError", False)
    assert SECRET not in str(unknown)
    already = missing_api_key("d", "X_KEY")
    assert provider_error(already, "other") is already
    assert set(RETRYABLE_TYPES).isdisjoint(NON_RETRYABLE_TYPES)


def test_prices() -> None:
    own = Price(input=1.0, output=2.0)
    assert price_for("a", Deployment(provider="openai", model="gpt-4o", price=own)) is own
    assert (
        price_for("a", Deployment(provider="openai", model="gpt-4o-mini")) == PRICES["gpt-4o-mini"]
    )
    snapshot = Deployment(provider="anthropic", model="claude-sonnet-4-20250514")
    assert price_for("a", snapshot) == PRICES["claude-sonnet-4-0"]
    assert (
        price_for("a", Deployment(provider="openai", model="gpt-4o-2024-08-06")) == PRICES["gpt-4o"]
    )
    local = Deployment(provider="openai_compatible", model="qwen3", base_url="http://h/v1")
    assert price_for("a", local).cost(TokenUsage(input_tokens=10**6)) == 0.0
    with pytest.raises(KeelUserError, match=r"deployments\.big\.price"):
        price_for("big", Deployment(provider="anthropic", model="claude-unknown-9"))
