"""Redaction of a model call: PII out of the request, back into the response.

Messages, grounding documents (titles and text), earlier tool-call arguments and a judge
request's question and answer are redacted with one `Redactor`, so a value keeps one
placeholder across the whole request; the response's text, its tool-call arguments and a
judgement's sentences get the values back.
"""

from collections.abc import Callable

from pydantic import JsonValue

from keel.schemas.model import Message, ModelRequest, ModelResponse, ToolCall
from tools.guards.pii import Redactor

__all__ = ["redact_request", "restore_response"]


def redact_request(redactor: Redactor, request: ModelRequest) -> ModelRequest:
    """`request` with every PII value replaced by a placeholder."""
    return request.model_copy(
        update={
            "messages": [_message(redactor, m) for m in request.messages],
            "documents": [
                d.model_copy(
                    update={"title": redactor.redact(d.title), "text": redactor.redact(d.text)}
                )
                for d in request.documents
            ],
            "judge": None
            if request.judge is None
            else request.judge.model_copy(
                update={
                    "question": redactor.redact(request.judge.question),
                    "answer": redactor.redact(request.judge.answer),
                }
            ),
        }
    )


def restore_response(redactor: Redactor, response: ModelResponse) -> ModelResponse:
    """`response` with the placeholders the model repeated replaced by their values."""
    return response.model_copy(
        update={
            "text": redactor.restore(response.text),
            "tool_calls": [_call(redactor.restore, c) for c in response.tool_calls],
            "judgement": None
            if response.judgement is None
            else response.judgement.model_copy(
                update={"sentences": [redactor.restore(s) for s in response.judgement.sentences]}
            ),
        }
    )


def _message(redactor: Redactor, message: Message) -> Message:
    return message.model_copy(
        update={
            "content": redactor.redact(message.content),
            "tool_calls": [_call(redactor.redact, c) for c in message.tool_calls],
        }
    )


def _call(change: Callable[[str], str], call: ToolCall) -> ToolCall:
    return call.model_copy(
        update={"arguments": {k: _json(change, v) for k, v in call.arguments.items()}}
    )


def _json(change: Callable[[str], str], value: JsonValue) -> JsonValue:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_json(change, v) for v in value]
    if isinstance(value, dict):
        return {k: _json(change, v) for k, v in value.items()}
    return value
