"""How provider exceptions map to Temporal errors, and model prices."""

from datetime import timedelta

import anthropic
import httpx2
import openai
import pytest

from keel.errors import KeelUserError
from keel.schemas.model import Usage as TokenUsage
from keel.schemas.routing import Deployment, Price
from tests.workflows.providers.support import SECRET
from tools.models.errors import (
    NON_RETRYABLE_TYPES,
    RETRYABLE_TYPES,
    missing_api_key,
    provider_error,
)
from tools.models.prices import PRICES, price_for


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
