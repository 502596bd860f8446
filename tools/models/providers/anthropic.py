"""The Anthropic messages adapter.

One `AnthropicProvider` serves one deployment. Its `anthropic.AsyncAnthropic` client is
built on the first call, with ``max_retries=0`` (Temporal owns retries) and the
deployment's timeout; the key is read from the deployment's ``api_key_env``
(``ANTHROPIC_API_KEY`` when unset).

The messages API differs from chat completions in ways this module absorbs: the system
prompt is a parameter, not a message; tool calls are ``tool_use`` content blocks and tool
results are ``tool_result`` blocks inside a user message (consecutive results share one);
temperature runs from 0 to 1, and is no longer an SDK parameter, so it goes in the body.
Usage counts cache reads and writes apart from ``input_tokens``, so they are added back:
Keel's ``input_tokens`` is everything the model read. There are no logprobs, so the
prompt asks for a trailing ``Confidence:`` line.
"""

from typing import Any, cast

import anthropic
from anthropic.types import Message as AnthropicMessage
from pydantic import JsonValue

from keel.schemas.model import Message, ModelRequest, ModelResponse, ToolCall, Usage
from keel.schemas.routing import Price
from tools.models.errors import malformed_response
from tools.models.providers._base import SDKProvider
from tools.models.providers._common import FinishReason, reply_schema, respond, system_prompt

__all__ = ["AnthropicProvider"]

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicProvider(SDKProvider[anthropic.AsyncAnthropic]):
    """Calls one `anthropic` deployment."""

    def _build_client(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=self._key(),
            base_url=self.spec.base_url,
            timeout=self.spec.timeout_s,
            max_retries=0,
            # `model.call` traces the call itself; the SDK's own span would count the
            # tokens twice and, if its environment variables say so, record content.
            open_telemetry=False,
        )

    async def _send(self, client: anthropic.AsyncAnthropic, request: ModelRequest) -> Any:
        return await client.messages.create(**self._arguments(request))

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": self.spec.model,
            "max_tokens": request.max_output_tokens,
            "messages": _messages(request.messages),
        }
        system = system_prompt(request, ask_confidence=True)
        if system:
            arguments["system"] = system
        if request.temperature is not None:
            # The SDK dropped its `temperature` parameter; the API still reads the field.
            arguments["extra_body"] = {"temperature": min(request.temperature, 1.0)}
        if request.tools:
            arguments["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
        if (schema := reply_schema(request)) is not None:
            arguments["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        if request.idempotency_key:
            arguments["extra_headers"] = {"Idempotency-Key": request.idempotency_key}
        return arguments

    def _response(
        self, request: ModelRequest, reply: object, price: Price, started: float
    ) -> ModelResponse:
        if not isinstance(reply, AnthropicMessage):
            raise malformed_response(self.name, "not a message")
        try:
            blocks = list(reply.content)
            text = "".join(b.text for b in blocks if b.type == "text")
            calls = [
                # The SDK types a tool's input as plain objects; it is the JSON the API sent.
                ToolCall(id=b.id, name=b.name, arguments=cast(dict[str, JsonValue], b.input))
                for b in blocks
                if b.type == "tool_use"
            ]
            finish = _FINISH.get(reply.stop_reason or "end_turn", "stop")
            usage = reply.usage
            cache_read = usage.cache_read_input_tokens or 0
            cache_write = usage.cache_creation_input_tokens or 0
            normalised = Usage(
                input_tokens=usage.input_tokens + cache_read + cache_write,
                output_tokens=usage.output_tokens,
                cached_tokens=cache_read,
                cache_write_tokens=cache_write,
            )
            model = reply.model
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise malformed_response(self.name, f"unexpected shape: {type(exc).__name__}") from None
        return respond(
            request,
            text=text,
            tool_calls=calls,
            finish_reason=finish,
            usage=normalised,
            model=model,
            deployment=self.name,
            spec=self.spec,
            price=price,
            started=started,
        )


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Chat messages as Anthropic turns; system messages go to the `system` parameter."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id or "",
                "content": message.content,
            }
            previous = turns[-1] if turns else None
            if previous and previous["role"] == "user" and isinstance(previous["content"], list):
                previous["content"].append(result)
            else:
                turns.append({"role": "user", "content": [result]})
        elif message.role == "assistant" and message.tool_calls:
            blocks: list[dict[str, Any]] = []
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in message.tool_calls
            ]
            turns.append({"role": "assistant", "content": blocks})
        else:
            turns.append({"role": message.role, "content": message.content})
    return turns
