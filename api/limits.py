"""Request-size limit: a body over the limit is refused with 413 before it is read whole."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response
from keel.errors import PayloadTooLarge

__all__ = ["BodySizeLimit"]


class BodySizeLimit:
    """ASGI middleware: refuse request bodies larger than `max_bytes` (413 problem+json).

    A declared `Content-Length` over the limit is refused at once; a body sent without one
    (chunked) is counted as it arrives and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, refusing its body once it is too large."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen, refused = 0, False

        async def counting() -> Message:
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes and not refused:
                refused = True
                await self._refuse(scope, receive, send)
                # The application sees the client go away, and stops reading.
                return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counting, unless_refused)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        too_large = PayloadTooLarge(f"the request body is over {self.max_bytes} bytes")
        await problem_response(too_large)(scope, receive, send)
