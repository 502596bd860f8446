"""What the provider adapters share: the prompt Keel adds, and reading the answer back.

The system prompt is the request's own system messages followed by Keel's sections:

- **Documents** (spotlighting, `tools.models.spotlight`). The passages go into one
  delimited, labelled block, each as a ``<document id="…" title="…" …>`` element whose
  text is escaped so a passage cannot close the block early. The instruction before the
  block says that document text is data, never instructions, and that the answer cites
  passages as ``[id]``.
- **Labels.** The model replies with exactly one label name (the text before ``:``).
- **Judge** (``request.judge``): the question and the answer's numbered sentences
  (`tools.text.split_sentences`), and the instruction to reply with one JSON object
  ``{verdict, unsupported, missing}`` (`JUDGE_SCHEMA`, which the adapters also send as
  the structured-output schema).
- **Confidence**, for providers without logprobs: a last line ``Confidence: 0.83``.

Reading back: a trailing ``Confidence:`` line is removed from the text and becomes the
confidence unless logprobs gave one; the label is the reply matched case-insensitively
against the label names (falling back to ``other``, else the first label); citations are
the ``[id]`` markers that name a given passage, in order of first mention. A judge
request's reply must be that JSON object (fenced or not); one that is not, or names a
sentence that does not exist, is a `MalformedResponse`: retryable, so Temporal asks again,
and a `fallback` route whose last candidate is `local` ends with the local verifier.
"""

import json
import math
import re
import time
from collections.abc import Sequence
from typing import Literal

from pydantic import JsonValue, ValidationError

from keel.schemas.model import Judgement, ModelRequest, ModelResponse, ToolCall, Usage
from keel.schemas.retrieval import Passage
from keel.schemas.routing import Deployment, Price
from tools.models.errors import malformed_response
from tools.models.spotlight import documents_block
from tools.text import split_sentences

__all__ = [
    "CONFIDENCE_INSTRUCTION",
    "JUDGE_INSTRUCTION",
    "JUDGE_SCHEMA",
    "LABELS_INSTRUCTION",
    "FinishReason",
    "label_names",
    "logprob_confidence",
    "parse_arguments",
    "parse_citations",
    "parse_judgement",
    "parse_label",
    "reply_schema",
    "respond",
    "schema_name",
    "split_confidence",
    "system_prompt",
]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]

LABELS_INSTRUCTION = (
    "Classify the conversation. Reply with exactly one of these label names and nothing "
    "else: {names}. The labels are:"
)
CONFIDENCE_INSTRUCTION = (
    "End your reply with a last line of the form `Confidence: 0.83`: your probability, "
    "between 0 and 1, that the reply is correct and supported."
)

JUDGE_INSTRUCTION = (
    "You check an answer drafted for a customer's question against the documents it cites. "
    "For each numbered sentence of the answer, decide whether the documents support it and "
    "whether it speaks to the question. Reply with one JSON object and nothing else: "
    '{{"verdict": "answered" | "partial" | "not_answered", "unsupported": [numbers of the '
    'sentences that are unsupported or off the question], "missing": "what the question '
    'asks that the kept sentences do not answer, or empty"}}.\n\nQuestion: {question}\n\n'
    "Answer sentences:\n{sentences}"
)
JUDGE_SCHEMA: dict[str, JsonValue] = {
    "title": "Judgement",
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["answered", "partial", "not_answered"]},
        "unsupported": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "missing": {"type": "string"},
    },
    "required": ["verdict", "unsupported", "missing"],
    "additionalProperties": False,
}
"""The structured-output schema of a judge's reply (`Judgement` without its sentences)."""

_CONFIDENCE_LINE = re.compile(
    r"(?<![\w-])[*_]*confidence[*_ \t]*[:=][*_ \t]*"
    r"(?P<value>\d+(?:\.\d+)?|\.\d+)[ \t]*(?P<percent>%)?[*_.]*[ \t]*\Z",
    re.IGNORECASE,
)
_CITATION = re.compile(r"\[([^\[\]\n]{1,200})\]")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def system_prompt(request: ModelRequest, *, ask_confidence: bool) -> str:
    """The request's system messages, then Keel's documents, labels and confidence sections.

    Args:
        request: The normalised request.
        ask_confidence: Whether to ask for a trailing ``Confidence:`` line (providers
            without logprobs; never with tools or a JSON schema, whose replies are parsed).

    Returns:
        The system prompt; empty when there is nothing to say.

    """
    parts = [m.content for m in request.messages if m.role == "system" and m.content]
    if request.documents:
        parts.append(documents_block(request.documents))
    if request.judge is not None:
        numbered = "\n".join(
            f"{i}. {s}" for i, s in enumerate(split_sentences(request.judge.answer))
        )
        parts.append(JUDGE_INSTRUCTION.format(question=request.judge.question, sentences=numbered))
    if request.labels:
        lines = [f"- {label}" for label in request.labels]
        names = ", ".join(label_names(request.labels))
        parts.append("\n".join([LABELS_INSTRUCTION.format(names=names), *lines]))
    if ask_confidence and not request.tools and request.json_schema is None and not request.judge:
        parts.append(CONFIDENCE_INSTRUCTION)
    return "\n\n".join(parts)


def label_names(labels: Sequence[str]) -> list[str]:
    """Label names: the text before each label's ``:``."""
    return [label.partition(":")[0].strip() for label in labels]


def parse_label(text: str, labels: Sequence[str]) -> str:
    """The label a reply names (see the module docstring for the fallbacks)."""
    names = label_names(labels)
    lowered = [name.lower() for name in names]
    reply = text.strip().strip("`*_\"'.!").strip().lower()
    if reply in lowered:
        return names[lowered.index(reply)]
    # A chatty reply ("The label is billing."): the label named first wins.
    found = [
        (match.start(), i)
        for i, name in enumerate(lowered)
        if name and (match := re.search(rf"(?<!\w){re.escape(name)}(?!\w)", reply))
    ]
    if found:
        return names[min(found)[1]]
    return names[lowered.index("other")] if "other" in lowered else names[0]


def parse_citations(text: str, documents: Sequence[Passage]) -> list[str]:
    """Ids of given passages cited as ``[id]`` (or ``[id1, id2]``), first mention first."""
    known = {d.id for d in documents}
    cited = (part.strip() for group in _CITATION.findall(text) for part in re.split(r"[,;]", group))
    return list(dict.fromkeys(c for c in cited if c in known))


def split_confidence(text: str) -> tuple[str, float | None]:
    """`text` without a trailing ``Confidence: 0.83`` line, and that confidence (0..1)."""
    stripped = text.rstrip()
    match = _CONFIDENCE_LINE.search(stripped)
    if match is None:
        return text, None
    value = float(match["value"])
    if match["percent"] or value > 1:
        value /= 100
    return stripped[: match.start()].rstrip(), round(min(max(value, 0.0), 1.0), 3)


def logprob_confidence(logprobs: Sequence[float]) -> float | None:
    """exp(mean token logprob), to 3 places: the answer's mean token probability."""
    if not logprobs:
        return None
    return round(min(1.0, math.exp(sum(logprobs) / len(logprobs))), 3)


def parse_arguments(raw: str | None) -> dict[str, JsonValue]:
    """Tool-call arguments from JSON; unreadable arguments are kept as ``{"_raw": raw}``."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}


def parse_judgement(text: str, request: ModelRequest, deployment: str) -> Judgement:
    """A judge's reply read as a `Judgement` over the answer's sentences.

    Raises:
        MalformedResponse: For a reply that is not the JSON object asked for.

    """
    assert request.judge is not None
    sentences = split_sentences(request.judge.answer)
    try:
        reply = Judgement.model_validate_json(_FENCE.sub("", text.strip()))
        return Judgement.model_validate(reply.model_dump() | {"sentences": sentences})
    except ValidationError:
        raise malformed_response(deployment, "the judge's reply is not a judgement") from None


def reply_schema(request: ModelRequest) -> dict[str, JsonValue] | None:
    """The structured-output schema to send: the request's own, else a judge's."""
    if request.json_schema is not None:
        return request.json_schema
    return JUDGE_SCHEMA if request.judge is not None else None


def schema_name(schema: dict[str, JsonValue]) -> str:
    """A name for a JSON schema, as OpenAI requires one: its title, sanitised."""
    title = schema.get("title")
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", title)[:64] if isinstance(title, str) else ""
    return name or "response"


def respond(
    request: ModelRequest,
    *,
    text: str,
    tool_calls: list[ToolCall],
    finish_reason: FinishReason,
    usage: Usage,
    model: str,
    deployment: str,
    spec: Deployment,
    price: Price,
    started: float,
    token_confidence: float | None = None,
) -> ModelResponse:
    """The normalised response: confidence, label and citations read from `text`.

    Args:
        request: The request answered.
        text: The reply's text, as the provider sent it.
        tool_calls: Tool calls the reply asks for.
        finish_reason: Already mapped onto `ModelResponse.finish_reason`.
        usage: Normalised usage.
        model: The model that answered, as the provider names it.
        deployment: The deployment's name.
        spec: The deployment.
        price: The price to bill `usage` at.
        started: `time.perf_counter()` before the call.
        token_confidence: Confidence from logprobs, which wins over a stated one.

    Returns:
        The response.

    """
    judged = request.judge is not None
    answer, stated = (text, None) if judged else split_confidence(text)
    return ModelResponse(
        text=answer,
        judgement=parse_judgement(text, request, deployment) if judged else None,
        label=parse_label(answer, request.labels) if request.labels else None,
        citations=parse_citations(answer, request.documents),
        tool_calls=tool_calls,
        confidence=token_confidence if token_confidence is not None else stated,
        finish_reason=finish_reason,
        provider=spec.provider,
        model=model or spec.model,
        deployment=deployment,
        usage=usage,
        latency_ms=(time.perf_counter() - started) * 1000,
        cost_usd=price.cost(usage),
    )
