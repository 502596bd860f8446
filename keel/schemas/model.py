"""The model client's normalised request and response, shared by every provider."""

from typing import Literal, Self

from pydantic import BaseModel, Field, JsonValue, model_validator

from keel.schemas.retrieval import Passage

__all__ = [
    "JudgeInput",
    "Judgement",
    "Message",
    "ModelRequest",
    "ModelResponse",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "Verdict",
]

Verdict = Literal["answered", "partial", "not_answered"]
"""A judge's verdict on an answer: it answers the question, part of it, or not at all."""


class ToolCall(BaseModel):
    """A call the model asks for."""

    id: str
    name: str
    arguments: dict[str, JsonValue] = Field(default_factory=dict)


class ToolSpec(BaseModel):
    """A tool the model may call: its name, what it does, and its JSON-schema parameters."""

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, JsonValue] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


class Message(BaseModel):
    """One chat message; `tool` messages answer the assistant's `tool_calls`."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list[ToolCall])
    tool_call_id: str | None = None


class JudgeInput(BaseModel):
    """What a judge request asks about: an answer to a question, grounded in the documents.

    The passages the answer cites are the request's `documents`; the provider numbers the
    answer's sentences (from 0) and the judgement names them by those numbers.
    """

    question: str
    answer: str


class Judgement(BaseModel):
    """A judge's reply: the verdict, and which sentences of the answer to drop.

    `unsupported` lists sentences no cited passage supports or that do not speak to the
    question (padding); `missing` says, in a few words, what the question asks that the
    kept sentences do not answer. `sentences` is the answer as the provider numbered it.
    """

    verdict: Verdict
    unsupported: list[int] = Field(default_factory=list[int])
    missing: str = ""
    sentences: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _indices_name_sentences(self) -> Self:
        if self.sentences and any(not 0 <= i < len(self.sentences) for i in self.unsupported):
            raise ValueError(f"unsupported names a sentence out of 0..{len(self.sentences) - 1}")
        return self

    @property
    def removed(self) -> list[str]:
        """The sentences dropped, in order."""
        dropped = set(self.unsupported)
        return [s for i, s in enumerate(self.sentences) if i in dropped]

    @property
    def kept(self) -> list[str]:
        """The sentences not dropped, in order: the trimmed answer."""
        dropped = set(self.unsupported)
        return [s for i, s in enumerate(self.sentences) if i not in dropped]


class ModelRequest(BaseModel):
    """What an agent asks of a model.

    `documents` are grounding passages the answer must cite (by `[passage id]`); `labels`
    turns the request into a classification whose answer is one of the labels (`classifier`
    names the local classifier the keyless `local` model uses for them, when it has one);
    `tools` lets the model call tools; `json_schema` asks for structured output; `judge` asks
    whether an answer is supported by the `documents` and answers the question (reply:
    `Judgement`).
    """

    route: str = "default"
    messages: list[Message] = Field(min_length=1)
    documents: list[Passage] = Field(default_factory=list[Passage])
    labels: list[str] = Field(default_factory=list)
    classifier: str | None = Field(
        default=None, description="The `local` model's classifier for `labels` (an agent's)."
    )
    tools: list[ToolSpec] = Field(default_factory=list[ToolSpec])
    json_schema: dict[str, JsonValue] | None = None
    judge: JudgeInput | None = None
    max_output_tokens: int = Field(default=512, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
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

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cached_tokens: int = Field(default=0, ge=0, description="Part of input_tokens read from cache.")
    cache_write_tokens: int = Field(
        default=0, ge=0, description="Part of input_tokens written to the cache (Anthropic)."
    )


class ModelResponse(BaseModel):
    """A provider's answer, normalised.

    `confidence` is the provider's own evidence where it has one (`local`'s score, the mean
    token probability from logprobs, or a self-reported `Confidence:` line), else None.
    """

    text: str
    label: str | None = None
    citations: list[str] = Field(default_factory=list, description="Ids of cited passages.")
    tool_calls: list[ToolCall] = Field(default_factory=list[ToolCall])
    judgement: Judgement | None = Field(default=None, description="A judge request's reply.")
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"] = "stop"
    provider: str
    model: str
    deployment: str = ""
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float = 0.0
    cost_usd: float = 0.0
