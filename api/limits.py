"""Request-body limits, before any route reads a body: size (413) and JSON nesting (400).

Every route is behind them, including routes added later and those that read their body by
hand (document uploads). A JSON Lines file in a multipart upload is checked row by row by
`keel.documents`, with the same limit and the same problem.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response
from keel.errors import BodyTooDeep, KeelError, PayloadTooLarge
from keel.json_depth import check_depth

__all__ = ["BodyLimits"]


def _is_json(content_type: bytes | None) -> bool:
    """Whether FastAPI parses a body of this `Content-Type` as JSON (`*/json`, `*/*+json`)."""
    essence = (content_type or b"").partition(b";")[0].strip().lower()
    subtype = essence.partition(b"/")[2]
    return subtype == b"json" or subtype.endswith(b"+json")


class BodyLimits:
    """ASGI middleware: refuse bodies over `max_bytes` (413) and JSON nested too deep (400).

    A declared `Content-Length` over the limit is refused at once; a body sent without one
    (chunked) is counted as it arrives and refused as soon as it passes the limit. A JSON
    body is read whole (it is under the size limit), its nesting checked
    (`keel.json_depth`), and only then handed to the application.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, refusing its body once it is too large or too deep."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(self._too_large(), scope, receive, send)
        elif _is_json(headers.get(b"content-type")):
            await self._json(scope, receive, send)
        else:
            await self._streamed(scope, receive, send)

    async def _json(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # nobody to answer
            chunk: bytes = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._refuse(self._too_large(), scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            check_depth(body)
        except BodyTooDeep as failure:
            await self._refuse(failure, scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # what follows the body: a disconnect, in time
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send) -> None:
        seen, refused = 0, False

        async def counting() -> Message:
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes and not refused:
                refused = True
                await self._refuse(self._too_large(), scope, receive, send)
                # The application sees the client go away, and stops reading.
                return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counting, unless_refused)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body is over {self.max_bytes} bytes")

    @staticmethod
    async def _refuse(failure: KeelError, scope: Scope, receive: Receive, send: Send) -> None:
        await problem_response(failure)(scope, receive, send)
