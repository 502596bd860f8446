"""Provider failures as kinds of the `keel.errors` catalogue: the one place that classifies them.

Temporal owns retries (every SDK client runs with ``max_retries=0``), so each failure of a
provider call becomes a `ProviderError` kind (a Temporal `ApplicationError`) whose type says
what happened and whose retryability, declared in the catalogue, tells Temporal whether
another attempt on the same deployment can help. The workflow router reads the type to
decide whether to move to the next candidate.

```
kind                    raised for
RateLimited             HTTP 429; next_retry_delay from retry-after(-ms)
ProviderUnavailable     HTTP 5xx, 529 overloaded, 409 conflict
ProviderTimeout         HTTP 408, client-side read/connect/pool timeouts
ProviderUnreachable     connection refused/reset, DNS, TLS, protocol errors
MalformedResponse       a body that is not JSON or not the expected shape
ProviderError           anything else raised while calling a provider
BadRequest              HTTP 400, 413, 422 and other 4xx not listed here
ContextLengthExceeded   a 400 saying the prompt is longer than the context window
ContentFiltered         a 400 from the provider's content / safety filter
AuthenticationFailed    HTTP 401
PermissionDenied        HTTP 403
ModelNotFound           HTTP 404
QuotaExceeded           HTTP 429 `insufficient_quota`: out of credit, not busy
MissingApiKey           the deployment's key variable is unset or empty (a `KeelUserError`)
```

Messages name the deployment, the HTTP status, the provider's error code and request id.
They never quote the provider's error text or the request: an OpenAI 401 echoes part of
the key, and a 400 may quote the prompt. For the same reason callers raise these errors
``from None``, so the SDK exception does not travel along as the cause.

The SDKs' own exception types are looked up among the modules already loaded: each SDK is
imported by its provider only, and a worker whose deployments never use it holds none of
its (many) modules; an SDK that was never imported raised nothing.
"""

import email.utils
import json
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import httpx2
import pydantic
from temporalio.exceptions import ApplicationError

from keel.errors import (
    AuthenticationFailed,
    BadRequest,
    ContentFiltered,
    ContextLengthExceeded,
    MalformedResponse,
    MissingApiKey,
    ModelNotFound,
    PermissionDenied,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderUnreachable,
    QuotaExceeded,
    RateLimited,
    catalogue,
)

__all__ = [
    "NON_RETRYABLE_TYPES",
    "RETRYABLE_TYPES",
    "malformed_response",
    "missing_api_key",
    "provider_error",
]


RETRYABLE_TYPES = frozenset(
    k.temporal_type for k in catalogue() if issubclass(k, ProviderError) and k.retryable
)
"""Provider failure types that another attempt, on this deployment or another, may fix."""
NON_RETRYABLE_TYPES = frozenset(
    k.temporal_type for k in catalogue() if issubclass(k, ProviderError) and not k.retryable
)
"""Provider failure types that fail the same way however often they are retried: the
provider answered, so they also prove the deployment is up."""

_STATUS_TYPES: dict[int, tuple[type[ProviderError], str]] = {
    401: (AuthenticationFailed, "authentication failed"),
    403: (PermissionDenied, "permission denied"),
    404: (ModelNotFound, "model not found"),
}

_CONTEXT_CODES = {"context_length_exceeded", "string_above_max_length", "request_too_large"}
_CONTEXT_TEXT = re.compile(
    r"context.length|context.window|context limit|maximum context|prompt is too long"
    r"|too many (input )?tokens",
    re.IGNORECASE,
)
_FILTER_CODES = {"content_filter", "content_policy_violation", "responsibleaipolicyviolation"}
_FILTER_TEXT = re.compile(
    r"content.(management|filter|policy)|safety system|flagged", re.IGNORECASE
)

_SDKS = ("openai", "anthropic")
_TIMEOUTS = (httpx.TimeoutException, httpx2.TimeoutException, TimeoutError)
_UNREACHABLE = (httpx.TransportError, httpx2.TransportError, ConnectionError)
_MALFORMED = (
    httpx.DecodingError,
    httpx2.DecodingError,
    json.JSONDecodeError,
    UnicodeDecodeError,
    pydantic.ValidationError,
)


def provider_error(exc: BaseException, deployment: str) -> ApplicationError:
    """Classify a failed provider call (see the table in the module docstring).

    Args:
        exc: What the SDK (or its HTTP transport) raised. An `ApplicationError` is
            returned unchanged, so mapping twice is harmless.
        deployment: The deployment's name, for the message.

    Returns:
        The error to raise, ``from None``.

    """
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, _with_sdks(_MALFORMED, "APIResponseValidationError")):
        return malformed_response(deployment, type(exc).__name__)
    status = _status(exc)
    if status is not None:
        return _from_status(exc, status, deployment)
    if isinstance(exc, _with_sdks(_TIMEOUTS, "APITimeoutError")):
        return ProviderTimeout(f"{deployment}: the provider did not answer in time")
    if isinstance(exc, _with_sdks(_UNREACHABLE, "APIConnectionError")):
        return ProviderUnreachable(
            f"{deployment}: could not reach the provider ({type(exc).__name__})"
        )
    return ProviderError(f"{deployment}: provider call failed ({type(exc).__name__})")


def missing_api_key(deployment: str, env_var: str) -> MissingApiKey:
    """The error for a deployment whose key variable is unset or empty.

    Args:
        deployment: The deployment's name.
        env_var: The environment variable that should hold its key.

    Returns:
        A `MissingApiKey` error naming the variable.

    """
    return MissingApiKey(
        f"{deployment}: environment variable {env_var} is not set or empty; "
        f"set it to the provider's API key, or change deployments.{deployment}.api_key_env"
    )


def malformed_response(deployment: str, why: str) -> MalformedResponse:
    """The error for a provider answer that could not be decoded or lacks expected parts.

    Args:
        deployment: The deployment's name.
        why: What was wrong, in a few words (never the body itself).

    Returns:
        A `MalformedResponse` error.

    """
    return MalformedResponse(f"{deployment}: the provider's response could not be read ({why})")


def _with_sdks(
    kinds: tuple[type[BaseException], ...], sdk_kind: str
) -> tuple[type[BaseException], ...]:
    """`kinds` and the exception type `sdk_kind` of every provider SDK loaded so far."""
    loaded = (getattr(sys.modules.get(name), sdk_kind, None) for name in _SDKS)
    return (*kinds, *(kind for kind in loaded if isinstance(kind, type)))


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)  # httpx(2).HTTPStatusError
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _from_status(exc: BaseException, status: int, deployment: str) -> ApplicationError:
    code, text = _error_fields(exc)
    where = f"{deployment}: HTTP {status}"
    if code:
        where += f" {code}"
    request_id = _request_id(exc)
    tail = f" (request id {request_id})" if request_id else ""
    if status == 429:
        if code == "insufficient_quota":
            return QuotaExceeded(f"{where}: the account is out of quota{tail}")
        delay = _retry_after(_headers(exc))
        after = f"; retry after {delay.total_seconds():g}s" if delay else ""
        return RateLimited(f"{where}: rate limited{after}{tail}", retry_after=delay)
    if status >= 500 or status == 409:
        return ProviderUnavailable(f"{where}: provider unavailable{tail}")
    if status == 408:
        return ProviderTimeout(f"{where}: provider timed out{tail}")
    if status in _STATUS_TYPES:
        kind, what = _STATUS_TYPES[status]
        return kind(f"{where}: {what}{tail}")
    lowered = code.lower()
    if status == 413 or lowered in _CONTEXT_CODES or _CONTEXT_TEXT.search(text):
        return ContextLengthExceeded(
            f"{where}: the request is longer than the model's context window{tail}"
        )
    if lowered in _FILTER_CODES or _FILTER_TEXT.search(text):
        return ContentFiltered(f"{where}: refused by the provider's content filter{tail}")
    return BadRequest(f"{where}: bad request{tail}")


def _error_fields(exc: BaseException) -> tuple[str, str]:
    """The provider's error code (safe to show) and message (only matched, never shown)."""
    body: Any = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]  # Anthropic's body, and OpenAI-compatible servers' raw body
    if not isinstance(body, Mapping):
        return "", ""
    details = body.get("details")
    code = body.get("code") or (details.get("error_code") if isinstance(details, Mapping) else None)
    code = code or body.get("type")
    text = body.get("message")
    return (
        re.sub(r"[^\w.-]", "", str(code))[:64] if code else "",
        text if isinstance(text, str) else "",
    )


def _headers(exc: BaseException) -> Mapping[str, str]:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return headers if isinstance(headers, Mapping) else {}


def _request_id(exc: BaseException) -> str:
    request_id = getattr(exc, "request_id", None)
    if not isinstance(request_id, str):
        headers = _headers(exc)
        request_id = headers.get("x-request-id") or headers.get("request-id") or ""
    return re.sub(r"[^\w.-]", "", request_id)[:128]


def _retry_after(headers: Mapping[str, str]) -> timedelta | None:
    """The server's requested wait: `retry-after-ms` (OpenAI) or `retry-after`."""
    try:
        millis = float(headers.get("retry-after-ms", ""))
    except ValueError:
        pass
    else:
        return timedelta(milliseconds=millis) if millis > 0 else None
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return timedelta(seconds=seconds) if seconds > 0 else None
