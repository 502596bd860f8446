"""What a provider protocol must render, and the pieces the protocols share."""

import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

from keel.testing.recording import ProtocolName, WireRequest
from keel.testing.replies import Reply, Usage

__all__ = ["Dialect", "Turn", "count_words", "dumps", "pieces", "reason"]


def count_words(text: str) -> int:
    """The stand-in token count used when a reply sets no usage."""
    return len(text.split())


def pieces(text: str, size: int = 0) -> list[str]:
    """`text` cut into stream deltas that join back to it exactly.

    Words (with their trailing space) by default, like a tokenizer; or runs of `size`
    characters, for JSON arguments, which models stream in arbitrary fragments.
    """
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)]
    return re.findall(r"\S+\s*|\s+", text)


def reason(status: int) -> str:
    """The phrase of `status`, including Anthropic's 529."""
    if status == 529:
        return "Overloaded"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Error {status}"


def dumps(payload: object) -> str:
    """Compact JSON, as both providers send it."""
    return json.dumps(payload, separators=(",", ":"))


@dataclass(frozen=True)
class Turn:
    """One answer being rendered: the request, the reply, and the request's number."""

    number: int
    request: WireRequest
    reply: Reply
    created: int

    @property
    def usage(self) -> Usage:
        """The reply's usage, or words counted when it sets none."""
        if self.reply.usage is not None:
            return self.reply.usage
        said = [self.reply.text, *(dumps(call.arguments) for call in self.reply.tool_calls)]
        return Usage(
            input_tokens=count_words(self.request.text), output_tokens=count_words(" ".join(said))
        )

    def tool_call_id(self, prefix: str, index: int) -> str:
        """The scripted id of tool call `index`, else one made from the request number."""
        return self.reply.tool_calls[index].id or f"{prefix}keel{self.number:04d}x{index}"


class Dialect(Protocol):
    """One provider's wire format for chat."""

    name: ProtocolName
    request_id_header: str

    def problem(self, body: dict[str, Any]) -> str | None:
        """Why the provider would refuse `body` with a 400, if it would."""
        ...

    def response(self, turn: Turn) -> dict[str, Any]:
        """The JSON body of a plain (non-streaming) answer."""
        ...

    def events(self, turn: Turn) -> list[str]:
        """The server-sent event frames of a streamed answer, terminator included."""
        ...

    def error(self, status: int, message: str, request_id: str) -> dict[str, Any]:
        """The provider's error body for `status`."""
        ...

    def garbled(self, data: str) -> list[str]:
        """A stream whose first event carries `data`, which does not parse."""
        ...
