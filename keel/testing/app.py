"""The fake provider's ASGI app: record each request, take its reply, answer in its dialect.

Faults are played here, not in the dialects. A delay polls for the client hanging up, so
a client that timed out frees the server at once instead of holding shutdown. A cut
sends the head and the first frames, then returns without ending the body: uvicorn then
logs "ASGI callable returned without completing response" and closes the socket, which
is exactly a connection dropped mid-stream.
"""

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from keel.testing.anthropic_messages import AnthropicMessages
from keel.testing.dialect import Dialect, Turn
from keel.testing.embeddings import EmbeddingInputError, embeddings_response
from keel.testing.openai_chat import OpenAIChat
from keel.testing.recording import ProtocolName, WireRequest
from keel.testing.script import Script

__all__ = ["WireApp"]

_log = logging.getLogger(__name__)

_POLL_SECONDS = 0.02


class WireApp:
    """Serves `/v1/chat/completions`, `/v1/messages` and `/v1/embeddings` from a script."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self._requests: list[WireRequest] = []
        self._lock = threading.Lock()
        openai, anthropic = OpenAIChat(), AnthropicMessages()
        self._app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_route(openai), methods=["POST"]),
                Route("/v1/messages", self._chat_route(anthropic), methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        await self._app(scope, receive, send)

    @property
    def requests(self) -> list[WireRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget the recorded requests and the script."""
        with self._lock:
            self._requests.clear()
        self.script.clear()

    def _record(
        self, request: Request, protocol: ProtocolName, body: dict[str, Any]
    ) -> tuple[WireRequest, int]:
        """Record `request` and number it: from 1 since the last reset, for its ids."""
        seen = WireRequest.capture(protocol, request.url.path, request.headers.items(), body)
        with self._lock:
            self._requests.append(seen)
            return seen, len(self._requests)

    def _chat_route(self, dialect: Dialect) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self._chat(request, dialect)

        return endpoint

    async def _chat(self, request: Request, dialect: Dialect) -> Response:
        body = await _json_object(request)
        seen, number = self._record(request, dialect.name, body or {})
        rid = f"req_keel{number:04d}"
        if body is None:
            return _error(dialect, 400, "The request body is not a JSON object.", rid)
        if problem := dialect.problem(body):
            return _error(dialect, 400, problem, rid)
        try:
            reply = self.script.next_reply(seen)
        except Exception as exc:  # a test's responder: report it to the client, as a 500
            _log.exception("keel.testing responder failed")
            return _error(dialect, 500, f"responder failed: {exc!r}", rid)
        if reply.delay and not await _wait(request, reply.delay):
            return Response(status_code=499)
        if reply.status != 200:
            return _error(dialect, reply.status, reply.message, rid, reply.retry_after)
        turn = Turn(number, seen, reply, int(time.time()))
        return _answer(dialect, turn, {dialect.request_id_header: rid})

    async def _embeddings(self, request: Request) -> Response:
        """Vectors from `keel.testing.embeddings`; a queued error reply is played instead."""
        body = await _json_object(request)
        seen, number = self._record(request, "openai", body or {})
        rid = f"req_keel{number:04d}"
        reply = self.script.queued(seen)
        if reply is not None and reply.delay and not await _wait(request, reply.delay):
            return Response(status_code=499)
        if reply is not None and reply.status != 200:
            return _error(OpenAIChat(), reply.status, reply.message, rid, reply.retry_after)
        try:
            answer = embeddings_response(body or {})
        except EmbeddingInputError as exc:
            return _error(OpenAIChat(), 400, str(exc), rid)
        return JSONResponse(answer, headers={"x-request-id": rid})


def _answer(dialect: Dialect, turn: Turn, headers: dict[str, str]) -> Response:
    """A 200: the answer, or its malformed or cut-off form."""
    reply = turn.reply
    if not turn.request.stream:
        if reply.raw_body is not None:
            return Response(reply.raw_body, media_type="application/json", headers=headers)
        if reply.cut_after is not None:
            return _Cut([], "application/json", headers)
        return JSONResponse(dialect.response(turn), headers=headers)
    if reply.raw_body is not None:
        frames = dialect.garbled(reply.raw_body)
    else:
        frames = dialect.events(turn)
    if reply.cut_after is not None:
        return _Cut(frames[: reply.cut_after], "text/event-stream", headers)
    return StreamingResponse(_each(frames), media_type="text/event-stream", headers=headers)


class _Cut(Response):
    """A 200 that sends its head and `frames`, then drops the connection."""

    def __init__(self, frames: list[str], media_type: str, headers: dict[str, str]) -> None:
        super().__init__(media_type=media_type, headers=headers)
        # Without a content-length the body is chunked, and it never gets its last chunk.
        del self.headers["content-length"]
        self.frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        for frame in self.frames:
            await send({"type": "http.response.body", "body": frame.encode(), "more_body": True})


async def _each(frames: list[str]) -> AsyncIterator[str]:
    # An async iterator keeps Starlette from iterating on a worker thread.
    for frame in frames:
        yield frame


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return cast(dict[str, Any], body) if isinstance(body, dict) else None


async def _wait(request: Request, seconds: float) -> bool:
    """Sleep `seconds`; False if the client hung up first."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if await request.is_disconnected():
            return False
        await asyncio.sleep(min(_POLL_SECONDS, left))
    return True


def _error(
    dialect: Dialect, status: int, message: str, rid: str, retry_after: float | None = None
) -> JSONResponse:
    headers = {dialect.request_id_header: rid}
    if retry_after is not None:
        # Whole seconds as the RFC has them; the SDKs also accept fractions.
        headers["retry-after"] = f"{retry_after:g}"
    return JSONResponse(dialect.error(status, message, rid), status_code=status, headers=headers)
