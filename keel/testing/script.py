"""Which reply a request gets: queued replies first, then the responder."""

import threading
from collections import deque
from collections.abc import Callable

from keel.testing.recording import ProtocolName, WireRequest
from keel.testing.replies import Reply

__all__ = ["Responder", "Script", "echo"]

Responder = Callable[[WireRequest], Reply]
"""Answers a request no queued reply matched. It runs on the server's thread."""


def echo(request: WireRequest) -> Reply:
    """Answer with the last user message, word for word."""
    return Reply(text=request.prompt)


class Script:
    """Queues of replies, keyed by protocol and model, in front of a responder.

    A request takes the next reply from the most specific queue that has one: its
    protocol and model, its protocol, its model, then the catch-all queue. With every
    queue empty, the responder answers. Safe to use from the test and server threads.
    """

    def __init__(self, responder: Responder = echo) -> None:
        self.responder: Responder = responder
        self._first_responder = responder
        self._queues: dict[tuple[ProtocolName | None, str | None], deque[Reply]] = {}
        self._lock = threading.Lock()

    def push(
        self, *replies: Reply, protocol: ProtocolName | None = None, model: str | None = None
    ) -> None:
        """Queue `replies`, in order, for requests of `protocol` naming `model` (None: any)."""
        with self._lock:
            self._queues.setdefault((protocol, model), deque()).extend(replies)

    def next_reply(self, request: WireRequest) -> Reply:
        """The reply for `request`, taken off its queue or made by the responder."""
        queued = self.queued(request)
        return queued if queued is not None else self.responder(request)

    def queued(self, request: WireRequest) -> Reply | None:
        """The next queued reply for `request`, if any (the responder is not asked)."""
        keys: list[tuple[ProtocolName | None, str | None]] = [
            (request.protocol, request.model),
            (request.protocol, None),
            (None, request.model),
            (None, None),
        ]
        with self._lock:
            queue = next((q for key in keys if (q := self._queues.get(key))), None)
            return queue.popleft() if queue is not None else None

    @property
    def pending(self) -> int:
        """How many queued replies no request has taken yet."""
        with self._lock:
            return sum(len(queue) for queue in self._queues.values())

    def clear(self) -> None:
        """Drop every queued reply and go back to the responder the script was made with."""
        with self._lock:
            self._queues.clear()
            self.responder = self._first_responder
