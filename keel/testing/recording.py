"""One request as the fake provider received it, with secrets masked."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, Self, cast

__all__ = ["MASK", "SECRET_HEADERS", "ProtocolName", "WireRequest"]

ProtocolName = Literal["openai", "anthropic"]

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"}
)
"""Headers whose values never reach a recording (names are kept, so tests can see auth was sent)."""

MASK = "***"


@dataclass(frozen=True)
class WireRequest:
    """A received request: which protocol and path, its headers and its JSON body.

    Header names are lower case. `idempotency_key` is the `Idempotency-Key` header, if any.
    """

    protocol: ProtocolName
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    idempotency_key: str | None = None

    @classmethod
    def capture(
        cls,
        protocol: ProtocolName,
        path: str,
        headers: Iterable[tuple[str, str]],
        body: dict[str, Any],
    ) -> Self:
        """Record a request, masking the values of `SECRET_HEADERS`."""
        kept = {
            name.lower(): MASK if name.lower() in SECRET_HEADERS else value
            for name, value in headers
        }
        return cls(protocol, path, kept, body, kept.get("idempotency-key"))

    @property
    def model(self) -> str:
        """The `model` the request names."""
        model = self.body.get("model")
        return model if isinstance(model, str) else ""

    @property
    def stream(self) -> bool:
        """Whether the client asked for server-sent events."""
        return self.body.get("stream") is True

    @property
    def prompt(self) -> str:
        """The text of the last user message: what is being asked."""
        for message in reversed(self._messages()):
            if message.get("role") == "user":
                return _text(message.get("content"))
        return ""

    @property
    def text(self) -> str:
        """All the text the request sends: system prompt and every message."""
        parts = [_text(self.body.get("system"))]
        parts += [_text(message.get("content")) for message in self._messages()]
        return "\n".join(part for part in parts if part)

    def _messages(self) -> list[dict[str, Any]]:
        messages = self.body.get("messages")
        if not isinstance(messages, list):
            return []
        return [m for m in cast(list[object], messages) if isinstance(m, dict)]


def _text(content: object) -> str:
    """Text of a message's content: a string, or (both protocols) a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = cast(list[object], content)
        texts = [cast(dict[str, object], p).get("text") for p in parts if isinstance(p, dict)]
        return "\n".join(t for t in texts if isinstance(t, str))
    return ""
