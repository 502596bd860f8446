"""The model client's normalised request and response, shared by every provider."""

from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator

from keel.schemas.retrieval import Passage

__all__ = ["Message", "ModelRequest", "ModelResponse", "Usage"]


class Message(BaseModel):
    """One chat message."""

    role: Literal["system", "user", "assistant"]
    content: str


class ModelRequest(BaseModel):
    """What an agent asks of a model.

    `documents` are grounding passages the answer must cite; `labels` turns the request
    into a classification whose answer is one of the labels.
    """

    route: str = "default"
    messages: list[Message] = Field(min_length=1)
    documents: list[Passage] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    max_output_tokens: int = Field(default=512, ge=1)
    idempotency_key: str = Field(default="", description="Workflow id + step id.")

    @model_validator(mode="after")
    def _has_user_message(self) -> Self:
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("messages need at least one 'user' message")
        return self

    @property
    def question(self) -> str:
        """The last user message: what is being asked."""
        return next(m.content for m in reversed(self.messages) if m.role == "user")


class Usage(BaseModel):
    """Token usage as reported (or, for `local`, counted) by the provider."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0


class ModelResponse(BaseModel):
    """A provider's answer, normalised."""

    text: str
    label: str | None = None
    citations: list[str] = Field(default_factory=list, description="Ids of cited passages.")
    confidence: float = Field(ge=0.0, le=1.0)
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"] = "stop"
    provider: str
    model: str
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float = 0.0
    cost_usd: float = 0.0
