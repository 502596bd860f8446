"""What the fake provider answers to one request: an answer, tool calls, or a fault.

One `Reply` describes the answer in provider-neutral terms; the OpenAI and Anthropic
dialects render it in their own wire format. Faults are replies too, built with the class
methods: `Reply.error(429, retry_after=2)`, `Reply.slow(2.0)`, `Reply.malformed()`,
`Reply.cut(after=3)`.
"""

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Reply", "ToolCall", "Usage"]


class Usage(BaseModel):
    """Token counts, written to the wire exactly as given.

    OpenAI counts cached tokens inside `prompt_tokens`; Anthropic counts them apart from
    `input_tokens`. The server converts nothing, so a test states the numbers the provider
    reports and can assert a cost ledger against them exactly:

    - OpenAI: `prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`.
    - Anthropic: `input_tokens`, `output_tokens`, `cache_read_input_tokens`,
      `cache_creation_input_tokens` (`cache_write_tokens`).
    """

    model_config = ConfigDict(frozen=True)

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cached_tokens: int = Field(default=0, ge=0)
    cache_write_tokens: int = Field(default=0, ge=0, description="Anthropic only.")


class ToolCall(BaseModel):
    """One tool the model asks to call."""

    model_config = ConfigDict(frozen=True)

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    id: str | None = Field(default=None, description="Generated from the request number if unset.")


class Reply(BaseModel):
    """The scripted answer to one request.

    A plain reply (status 200) answers with `text` and `tool_calls`. `usage=None` counts
    words instead: input from the request's messages, output from the reply.
    """

    model_config = ConfigDict(frozen=True)

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None
    confidence: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="OpenAI: the probability of every token in the logprobs (1 if unset).",
    )
    truncated: bool = Field(
        default=False, description="Stopped by the token limit: `length` / `max_tokens`."
    )
    status: int = Field(default=200, description="200, or an error status from 400 to 599.")
    message: str = Field(default="", description="Error message; the status phrase if empty.")
    retry_after: float | None = Field(default=None, ge=0, description="Seconds, in `retry-after`.")
    delay: float = Field(default=0.0, ge=0, description="Seconds to wait before answering.")
    raw_body: str | None = Field(
        default=None,
        description="Sent unparsed with a 200: the JSON body, or a stream's first event data.",
    )
    cut_after: int | None = Field(
        default=None,
        ge=0,
        description="Drop the connection after this many stream events (plain responses: "
        "after the headers).",
    )

    @model_validator(mode="after")
    def _status_is_ok_or_error(self) -> Self:
        if self.status != 200 and not 400 <= self.status <= 599:
            raise ValueError(f"status must be 200 or 400-599, not {self.status}")
        return self

    @classmethod
    def tool_call(
        cls, name: str, arguments: dict[str, Any] | None = None, *, usage: Usage | None = None
    ) -> Self:
        """A reply that calls one tool."""
        return cls(tool_calls=(ToolCall(name=name, arguments=arguments or {}),), usage=usage)

    @classmethod
    def error(cls, status: int, message: str = "", *, retry_after: float | None = None) -> Self:
        """An HTTP error with the provider's error body, e.g. 400, 401, 429, 500, 503."""
        if status < 400:
            raise ValueError(f"an error status is 400-599, not {status}")
        return cls(status=status, message=message, retry_after=retry_after)

    @classmethod
    def rate_limited(cls, retry_after: float = 1.0, message: str = "") -> Self:
        """HTTP 429 with a `retry-after` header."""
        return cls.error(429, message, retry_after=retry_after)

    @classmethod
    def slow(cls, delay: float, then: "Reply | None" = None) -> Self:
        """`then` (an empty answer by default), sent after `delay` seconds."""
        return cls.model_validate({**(then or cls()).model_dump(), "delay": delay})

    @classmethod
    def malformed(cls, body: str = '{"id": "truncated') -> Self:
        """A 200 whose JSON body (or first stream event) does not parse."""
        return cls(raw_body=body)

    @classmethod
    def cut(cls, after: int, then: "Reply | None" = None) -> Self:
        """`then` (an empty answer by default), with the connection dropped mid-way."""
        return cls.model_validate({**(then or cls()).model_dump(), "cut_after": after})
