"""The OpenAI chat-completions adapter, for OpenAI and every OpenAI-compatible server.

One `OpenAIProvider` serves one deployment. Its `openai.AsyncOpenAI` client is built on the
first call, not before, with ``max_retries=0`` (Temporal owns retries) and the deployment's
timeout. The key is read from the deployment's ``api_key_env`` (``OPENAI_API_KEY`` when
unset); an ``openai_compatible`` deployment without ``api_key_env`` sends a placeholder,
which local servers (vLLM, Ollama, llama.cpp) ignore.

Confidence comes from logprobs: the request asks for them unless it offers tools, and the
confidence is the answer's mean token probability. Reasoning models (``o3``, ``o4-mini``,
``gpt-5``…) have no logprobs and accept only the default temperature, so for them the
prompt asks for a trailing ``Confidence:`` line instead and the temperature is not sent.
"""

import json
import re
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from keel.schemas.model import Message, ModelRequest, ModelResponse, ToolCall, Usage
from keel.schemas.routing import Price
from tools.models.errors import malformed_response
from tools.models.providers._base import SDKProvider
from tools.models.providers._common import (
    FinishReason,
    logprob_confidence,
    parse_arguments,
    reply_schema,
    respond,
    schema_name,
    system_prompt,
)

__all__ = ["PLACEHOLDER_API_KEY", "OpenAIProvider"]

PLACEHOLDER_API_KEY = "keel-no-key"
"""Sent to an `openai_compatible` server that needs no key (the SDK insists on one)."""

_REASONING = re.compile(r"^(o\d|gpt-5(?!-chat))")
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAIProvider(SDKProvider[openai.AsyncOpenAI]):
    """Calls one `openai` or `openai_compatible` deployment."""

    def _build_client(self) -> openai.AsyncOpenAI:
        options: dict[str, Any] = {}
        if self.spec.base_url:
            options["base_url"] = self.spec.base_url
        return openai.AsyncOpenAI(
            api_key=self._api_key(), timeout=self.spec.timeout_s, max_retries=0, **options
        )

    async def _send(self, client: openai.AsyncOpenAI, request: ModelRequest) -> Any:
        return await client.chat.completions.create(**self._arguments(request))

    def _api_key(self) -> str:
        return PLACEHOLDER_API_KEY if self.spec.key_env is None else self._key()

    @property
    def _reasoning(self) -> bool:
        return self.spec.provider == "openai" and bool(_REASONING.match(self.spec.model))

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        system = system_prompt(request, ask_confidence=self._reasoning)
        messages = [{"role": "system", "content": system}] if system else []
        messages += [_message(m) for m in request.messages if m.role != "system"]
        # OpenAI's own models take max_completion_tokens (reasoning models refuse
        # max_tokens); compatible servers know max_tokens best.
        limit = "max_completion_tokens" if self.spec.provider == "openai" else "max_tokens"
        arguments: dict[str, Any] = {
            "model": self.spec.model,
            "messages": messages,
            limit: request.max_output_tokens,
        }
        if request.temperature is not None and not self._reasoning:
            arguments["temperature"] = request.temperature
        if request.tools:
            arguments["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
        elif not self._reasoning:
            arguments["logprobs"] = True
        if (schema := reply_schema(request)) is not None:
            arguments["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name(schema), "schema": schema},
            }
        if request.idempotency_key:
            arguments["extra_headers"] = {"Idempotency-Key": request.idempotency_key}
        return arguments

    def _response(
        self, request: ModelRequest, completion: object, price: Price, started: float
    ) -> ModelResponse:
        if not isinstance(completion, ChatCompletion):
            raise malformed_response(self.name, "not a chat completion")
        try:
            choice = completion.choices[0]
            message = choice.message
            text = message.content or ""
            calls = [
                ToolCall(
                    id=call.id,
                    name=call.function.name,
                    arguments=parse_arguments(call.function.arguments),
                )
                for call in message.tool_calls or []
                if call.type == "function"
            ]
            finish = _FINISH.get(choice.finish_reason, "stop")
            if message.refusal and not text:
                text, finish = message.refusal, "content_filter"
            if calls and finish == "stop":  # some compatible servers say "stop"
                finish = "tool_calls"
            tokens = choice.logprobs.content if choice.logprobs else None
            logprobs = [t.logprob for t in tokens or []]
            usage = completion.usage
            details = usage.prompt_tokens_details if usage else None
            normalised = Usage(
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
                cached_tokens=(details.cached_tokens or 0) if details else 0,
            )
            model = completion.model
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
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
            token_confidence=logprob_confidence(logprobs),
        )


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content,
        }
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}
