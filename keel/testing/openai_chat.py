"""The OpenAI chat-completions wire format (`POST /v1/chat/completions`).

A streamed answer is the chunk sequence the API sends: a role chunk, content deltas,
tool-call deltas (the first names the call, the rest carry argument fragments), a chunk
with `finish_reason`, then, with `stream_options.include_usage`, a chunk with no choices
and the usage (every earlier chunk carries `"usage": null`), then `data: [DONE]`.
"""

import math
from typing import Any

from keel.testing.dialect import Turn, dumps, pieces, reason
from keel.testing.recording import ProtocolName
from keel.testing.replies import Usage

__all__ = ["OpenAIChat"]

_ERROR_KINDS = {
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
"""(`type`, `code`) of an error body, where the API sets more than a generic type."""


class OpenAIChat:
    """Renders replies as chat completions."""

    name: ProtocolName = "openai"
    request_id_header = "x-request-id"

    def problem(self, body: dict[str, Any]) -> str | None:
        """Why the API would refuse `body` with a 400, if it would."""
        if not isinstance(body.get("model"), str):
            return "you must provide a model parameter"
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return "Invalid 'messages': empty array. Expected an array with minimum length 1."
        return None

    def response(self, turn: Turn) -> dict[str, Any]:
        """A `chat.completion` object."""
        reply = turn.reply
        message: dict[str, Any] = {
            "role": "assistant",
            # The API sends null content, not "", when the model only calls tools.
            "content": reply.text or (None if reply.tool_calls else ""),
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": turn.tool_call_id("call_", i),
                    "type": "function",
                    "function": {"name": call.name, "arguments": dumps(call.arguments)},
                }
                for i, call in enumerate(reply.tool_calls)
            ]
        choice = {
            "index": 0,
            "message": message,
            "logprobs": {"content": _logprobs(turn, pieces(reply.text)), "refusal": None}
            if _wants_logprobs(turn)
            else None,
            "finish_reason": _finish_reason(turn),
        }
        return {
            **_head(turn, "chat.completion"),
            "choices": [choice],
            "usage": _usage(turn.usage),
        }

    def events(self, turn: Turn) -> list[str]:
        """`data:` frames of `chat.completion.chunk` objects, then `data: [DONE]`."""
        reply = turn.reply
        options: dict[str, Any] = turn.request.body.get("stream_options") or {}
        with_usage = bool(options.get("include_usage"))
        head = _head(turn, "chat.completion.chunk") | ({"usage": None} if with_usage else {})

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return f"data: {dumps(head | {'choices': [choice | extra]})}\n\n"

        content = None if reply.tool_calls and not reply.text else ""
        first = {"role": "assistant", "content": content, "refusal": None}
        frames = [chunk(first)]
        for piece in pieces(reply.text):
            logprobs = (
                {"content": _logprobs(turn, [piece]), "refusal": None}
                if _wants_logprobs(turn)
                else None
            )
            frames.append(chunk({"content": piece}, logprobs=logprobs))
        for i, call in enumerate(reply.tool_calls):
            name = {
                "index": i,
                "id": turn.tool_call_id("call_", i),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            frames.append(chunk({"tool_calls": [name]}))
            for fragment in pieces(dumps(call.arguments), size=8):
                arguments = {"index": i, "function": {"arguments": fragment}}
                frames.append(chunk({"tool_calls": [arguments]}))
        frames.append(chunk({}, _finish_reason(turn)))
        if with_usage:
            usage: dict[str, Any] = head | {"choices": [], "usage": _usage(turn.usage)}
            frames.append(f"data: {dumps(usage)}\n\n")
        frames.append("data: [DONE]\n\n")
        return frames

    def error(self, status: int, message: str, request_id: str) -> dict[str, Any]:
        """`{"error": {"message", "type", "param", "code"}}`."""
        kind, code = _ERROR_KINDS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        text = message or reason(status)
        return {"error": {"message": text, "type": kind, "param": None, "code": code}}

    def garbled(self, data: str) -> list[str]:
        """`data: <data>`, unparsed."""
        return [f"data: {data}\n\n"]


def _head(turn: Turn, kind: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-keel{turn.number:04d}",
        "object": kind,
        "created": turn.created,
        "model": turn.request.model,
        "service_tier": "default",
        "system_fingerprint": None,
    }


def _finish_reason(turn: Turn) -> str:
    if turn.reply.truncated:
        return "length"
    return "tool_calls" if turn.reply.tool_calls else "stop"


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _wants_logprobs(turn: Turn) -> bool:
    return turn.request.body.get("logprobs") is True


def _logprobs(turn: Turn, tokens: list[str]) -> list[dict[str, Any]]:
    """Every token at the reply's `confidence` (certain by default), its own top alternative."""
    top = turn.request.body.get("top_logprobs") or 0
    confidence = turn.reply.confidence
    logprob = 0.0 if confidence is None else math.log(confidence)
    entries: list[dict[str, Any]] = []
    for token in tokens:
        entry = {"token": token, "logprob": logprob, "bytes": list(token.encode())}
        entries.append(entry | {"top_logprobs": [entry] if top else []})
    return entries
