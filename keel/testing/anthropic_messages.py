"""The Anthropic messages wire format (`POST /v1/messages`).

A streamed answer is the event sequence the API sends, each frame named by `event:`
(the SDK skips frames without one): `message_start` (empty content, input usage), a
`ping`, then per content block `content_block_start`, `content_block_delta`s
(`text_delta`, or `input_json_delta` fragments of a tool's input) and
`content_block_stop`, then `message_delta` (stop reason and cumulative usage) and
`message_stop`.
"""

from typing import Any

from keel.testing.dialect import Turn, dumps, pieces, reason
from keel.testing.recording import ProtocolName
from keel.testing.replies import Usage

__all__ = ["AnthropicMessages"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class AnthropicMessages:
    """Renders replies as Anthropic messages."""

    name: ProtocolName = "anthropic"
    request_id_header = "request-id"

    def problem(self, body: dict[str, Any]) -> str | None:
        """Why the API would refuse `body` with a 400, if it would."""
        for field, kind in (("model", str), ("messages", list), ("max_tokens", int)):
            if not isinstance(body.get(field), kind):
                return f"{field}: Field required"
        return None

    def response(self, turn: Turn) -> dict[str, Any]:
        """A `message` object."""
        return _message(turn, _blocks(turn)) | {
            "stop_reason": _stop_reason(turn),
            "usage": _usage(turn.usage),
        }

    def events(self, turn: Turn) -> list[str]:
        """Named `event:` frames, from `message_start` to `message_stop`."""
        usage = turn.usage
        # The API reports a token or so of output at the start; message_delta has the total.
        start = _message(turn, []) | {
            "usage": _usage(usage) | {"output_tokens": min(1, usage.output_tokens)}
        }
        frames = [_frame({"type": "message_start", "message": start}), _frame({"type": "ping"})]
        for index, block in enumerate(_blocks(turn)):
            opening: dict[str, Any]
            if block["type"] == "text":
                opening = block | {"text": ""}
                deltas = [{"type": "text_delta", "text": p} for p in pieces(block["text"])]
            else:
                opening = block | {"input": {}}
                # The API opens a tool's input with an empty fragment.
                fragments = ["", *pieces(dumps(block["input"]), size=8)]
                deltas = [{"type": "input_json_delta", "partial_json": f} for f in fragments]
            frames.append(
                _frame({"type": "content_block_start", "index": index, "content_block": opening})
            )
            frames += [
                _frame({"type": "content_block_delta", "index": index, "delta": delta})
                for delta in deltas
            ]
            frames.append(_frame({"type": "content_block_stop", "index": index}))
        delta = {"stop_reason": _stop_reason(turn), "stop_sequence": None}
        frames.append(_frame({"type": "message_delta", "delta": delta, "usage": _usage(usage)}))
        frames.append(_frame({"type": "message_stop"}))
        return frames

    def error(self, status: int, message: str, request_id: str) -> dict[str, Any]:
        """`{"type": "error", "error": {"type", "message"}, "request_id"}`."""
        kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        text = message or reason(status)
        return {"type": "error", "error": {"type": kind, "message": text}, "request_id": request_id}

    def garbled(self, data: str) -> list[str]:
        """A `message_start` event whose data is `data`, unparsed."""
        return [f"event: message_start\ndata: {data}\n\n"]


def _frame(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {dumps(event)}\n\n"


def _message(turn: Turn, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": f"msg_keel{turn.number:04d}",
        "type": "message",
        "role": "assistant",
        "model": turn.request.model,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
    }


def _blocks(turn: Turn) -> list[dict[str, Any]]:
    reply = turn.reply
    blocks: list[dict[str, Any]] = []
    if reply.text or not reply.tool_calls:
        blocks.append({"type": "text", "text": reply.text})
    blocks += [
        {
            "type": "tool_use",
            "id": turn.tool_call_id("toolu_", i),
            "name": call.name,
            "input": call.arguments,
        }
        for i, call in enumerate(reply.tool_calls)
    ]
    return blocks


def _stop_reason(turn: Turn) -> str:
    if turn.reply.truncated:
        return "max_tokens"
    return "tool_use" if turn.reply.tool_calls else "end_turn"


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.output_tokens,
    }
