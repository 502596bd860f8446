"""Errors as `application/problem+json` (RFC 9457), each with a stable `type`.

Every failure the API answers with is a kind of `keel.errors`' catalogue: raised in a route,
or coming back from Temporal (a workflow's, an Update's or an activity's failure with a
catalogued type). One handler turns any of them into its problem; anything else is a 500.
"""

import logging
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from keel.errors import (
    InvalidRequest,
    KeelError,
    KeelRunError,
    MalformedRequest,
    MethodNotAllowed,
    RouteNotFound,
    TemporalUnavailable,
    caught,
)

__all__ = [
    "PROBLEM_RESPONSES",
    "Problem",
    "field_errors",
    "install_problem_handlers",
    "problem",
    "problem_response",
    "problem_responses",
]

MEDIA_TYPE = "application/problem+json"

_CHALLENGE = 'Bearer realm="keel"'
"""`WWW-Authenticate` of every 401 (RFC 9110 wants one)."""

_BY_STATUS: dict[int, type[KeelError]] = {404: RouteNotFound, 405: MethodNotAllowed}
"""Starlette's own HTTP errors (no route, wrong method) as kinds; other 4xx are unreadable."""

_UNAVAILABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
_RETRY_AFTER = timedelta(seconds=1)

_HANDLED: tuple[type[Exception], ...] = (
    StarletteHTTPException,
    RequestValidationError,
    ApplicationError,  # `KeelError`s raised in the API, and Temporal's own
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    RPCError,
    Exception,
)
"""What the one handler answers (Starlette picks a handler by the exception's class)."""

log = logging.getLogger("keel.api")


class Problem(BaseModel):
    """An error response body."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


_PROBLEM_SCHEMA = Problem.model_json_schema()
_CONTENT = {MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    kind: {"description": description, "content": _CONTENT}
    for kind, description in (("4XX", "A problem with the request"), ("5XX", "A server problem"))
}
"""OpenAPI entries saying that every operation may answer a 4xx or 5xx problem."""


def problem_responses(*kinds: type[KeelError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems an operation answers with, by status."""
    codes: dict[int | str, list[str]] = {}
    for kind in kinds:
        codes.setdefault(kind.status, []).append(f"`{kind.code}`")
    return {
        status: {"description": ", ".join(names), "content": _CONTENT}
        for status, names in codes.items()
    }


def problem(failure: KeelError, status: int | None = None) -> Problem:
    """The problem a failure answers with (`status` for Starlette's own HTTP errors)."""
    return Problem(
        type=failure.problem_type(),
        title=failure.code.replace("-", " "),
        status=status or failure.status,
        detail=failure.message,
        errors=failure.errors or None,
    )


def problem_response(
    failure: KeelError, status: int | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Serialise a failure's problem, with `Retry-After` when it says when to try again."""
    body = problem(failure, status)
    headers = dict(headers or {})
    if failure.next_retry_delay is not None:
        headers.setdefault(
            "Retry-After", str(max(1, round(failure.next_retry_delay.total_seconds())))
        )
    if body.status == 401:
        headers.setdefault("WWW-Authenticate", _CHALLENGE)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=body.status,
        media_type=MEDIA_TYPE,
        headers=headers or None,
    )


def field_errors(errors: Any, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic errors as `{field, message}` pairs, the field a dotted path."""
    return [
        {
            "field": ".".join(str(p) for p in (*prefix, *e["loc"]) if p != "body"),
            "message": e["msg"],
        }
        for e in errors
    ]


def _validation(exc: RequestValidationError) -> KeelError:
    errors = field_errors(exc.errors())
    detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
    return InvalidRequest(detail or "invalid request", errors=errors)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of `app` with a problem."""

    async def answer(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, StarletteHTTPException):
            fallback = MalformedRequest if exc.status_code < 500 else KeelRunError
            kind = _BY_STATUS.get(exc.status_code, fallback)
            return problem_response(kind(str(exc.detail)), exc.status_code, dict(exc.headers or {}))
        if isinstance(exc, RequestValidationError):
            return problem_response(_validation(exc))
        failure = caught(exc)
        if failure is None and isinstance(exc, RPCError) and exc.status in _UNAVAILABLE:
            failure = TemporalUnavailable(
                f"Temporal did not answer: {exc.message}", retry_after=_RETRY_AFTER
            )
        if failure is None:
            log.exception(
                "unexpected error in %s %s", request.method, request.url.path, exc_info=exc
            )
            failure = KeelRunError(f"unexpected error: {type(exc).__name__}")
        return problem_response(failure)

    for kind in _HANDLED:
        app.add_exception_handler(kind, answer)
