"""How provider failures become Temporal errors, through both adapters."""

from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError

from keel.net import free_port
from keel.testing.replies import Reply
from keel.testing.server import WireServer
from tests.workflows.providers.support import KEY_ENV, PRICE, SECRET, Make, ask
from tools.models.errors import NON_RETRYABLE_TYPES, RETRYABLE_TYPES

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
