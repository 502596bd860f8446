"""Errors as `application/problem+json` (RFC 9457), each with a stable `type`."""

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

__all__ = [
    "PROBLEM_RESPONSES",
    "ErrorCode",
    "Problem",
    "ProblemError",
    "field_errors",
    "install_problem_handlers",
    "problem_response",
]

MEDIA_TYPE = "application/problem+json"

log = logging.getLogger("keel.api")


class ErrorCode(StrEnum):
    """The stable part of every problem's `type` (`urn:keel:problem:<code>`)."""

    UNKNOWN_AGENT = "unknown-agent"
    INVALID_INPUT = "invalid-input"
    INVALID_ARGUMENTS = "invalid-arguments"
    VALIDATION = "validation-error"
    UNKNOWN_RUN = "unknown-run"
    RUN_NOT_RUNNING = "run-not-running"
    UNKNOWN_REVIEW = "unknown-review"
    REVIEW_NOT_PENDING = "review-not-pending"
    STALE_ACTION = "stale-action"
    CLAIMED_BY_ANOTHER = "claimed-by-another"
    IDEMPOTENCY_KEY_REUSED = "idempotency-key-reused"
    BAD_PAGE_TOKEN = "bad-page-token"
    PAYLOAD_TOO_LARGE = "payload-too-large"
    BAD_REQUEST = "bad-request"
    NOT_FOUND = "not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    TEMPORAL_UNAVAILABLE = "temporal-unavailable"
    INTERNAL = "internal-error"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    SELF_APPROVAL = "self-approval"
    RATE_LIMITED = "rate-limited"
    UNKNOWN_KEY = "unknown-key"
    UNKNOWN_COLLECTION = "unknown-collection"
    COLLECTION_EXISTS = "collection-exists"
    UNKNOWN_DOCUMENT = "unknown-document"
    UNKNOWN_INGESTION = "unknown-ingestion"
    INGESTION_STARTED = "ingestion-started"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    INVALID_DOCUMENT = "invalid-document"
    INVALID_SEARCH = "invalid-search"
    UNKNOWN_EMBEDDING = "unknown-embedding"

    @property
    def uri(self) -> str:
        """The problem's `type`."""
        return f"urn:keel:problem:{self.value}"


class Problem(BaseModel):
    """An error response body."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


_PROBLEM_SCHEMA = Problem.model_json_schema()
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    kind: {"description": description, "content": {MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}}}
    for kind, description in (("4XX", "A problem with the request"), ("5XX", "A server problem"))
}
"""OpenAPI entries saying that every operation may answer a 4xx or 5xx problem."""


class ProblemError(Exception):
    """Raise in a route to answer with a problem."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.headers = headers
        self.problem = Problem(
            type=code.uri,
            title=code.value.replace("-", " "),
            status=status,
            detail=detail,
            errors=errors,
        )


def problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """Serialise a problem."""
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=headers,
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


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of `app` with a problem."""

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.problem, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc.errors())
        detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
        return problem_response(
            ProblemError(422, ErrorCode.VALIDATION, detail or "invalid request", errors).problem
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}
        fallback = ErrorCode.BAD_REQUEST if exc.status_code < 500 else ErrorCode.INTERNAL
        code = codes.get(exc.status_code, fallback)
        return problem_response(
            ProblemError(exc.status_code, code, str(exc.detail)).problem, exc.headers
        )

    @app.exception_handler(RPCError)
    async def _temporal(request: Request, exc: RPCError) -> JSONResponse:
        if exc.status not in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return await _unexpected(request, exc)
        problem = ProblemError(
            503, ErrorCode.TEMPORAL_UNAVAILABLE, f"Temporal did not answer: {exc.message}"
        ).problem
        return problem_response(problem, headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(
            ProblemError(500, ErrorCode.INTERNAL, f"unexpected error: {type(exc).__name__}").problem
        )
