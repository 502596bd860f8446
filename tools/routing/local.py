"""Keel's keyless, offline model provider: an extractive heuristic, not a language model.

`LocalProvider` never generates text. It copies sentences out of the documents it is
given, or picks one of the labels it is given, using word overlap and BM25; given tools,
it proposes calls by fixed pattern rules and then lists their results. It exists so
that Keel runs end to end without an API key, and so that tests get deterministic
answers. Its confidence is a score of lexical evidence, not a calibrated probability.
All tokens below come from `tools.text.tokenize` (lowercased, stopwords dropped,
lightly stemmed).

Classification (``request.labels`` is non-empty). Each label is written
``"name: keyword keyword ..."``; the name is the text before the colon. A label's tokens
are those of its whole string, name included. The score of a label is the number of
distinct question tokens among its tokens. The highest score wins, ties going to the
earliest label. With no overlap at all the answer is the label named ``other`` (in any
case) if there is one, else the first label. ``text`` and ``label`` are the label name,
and with ``m`` matched tokens::

    confidence = m / (m + 1)        # 0 when nothing matched, 0.5 for one token, ...

Extractive answer (no labels). Every document is split into sentences and BM25 is built
over that sentence collection. Sentences are scored against the distinct question
tokens Q; up to three of the best are kept if they score above zero and at least 40% of
the best score, and are joined in reading order (document order as given, then sentence
order). ``citations`` lists the ids of their passages, deduplicated, in that order.
Let E be the evidence: the tokens of the selected sentences and of the titles of the
passages they come from, since a heading such as "Resolve sync conflicts" is part of
what is cited. With ``idf`` from the sentence BM25 (a question token absent from every
sentence gets the largest idf)::

    coverage    = sum(idf(q) for q in Q & E) / sum(idf(q) for q in Q)
    specificity = min(1, 0.4 * |Q & E|)
    confidence  = round(coverage * specificity, 3)

Coverage asks whether the answer speaks to every part of the question, weighting the
rare, telling words most. Specificity asks how many distinct question words the evidence
corroborates: a single shared word (a bare "help", or "work" in "it doesn't work") is
weak evidence that the answer is on topic and caps confidence at 0.4, two shared words
cap it at 0.8 and three or more at 1.0. With no documents, no question tokens or no
sentence scoring above zero, the answer is `NOT_FOUND_TEXT` with no citations and
confidence 0.

Tools (``request.tools`` is non-empty) and tool results. The provider calls tools by
fixed intent rules on the last user message: an arithmetic expression for
``calculator``, a URL for ``http_get``, a request to open a ticket for
``create_ticket``, a unit conversion for ``unit_convert``, and, for any other tool, word
overlap with the tool's name and description when the tool takes one string. Each
matching rule adds one call; the response then has no text, ``finish_reason`` is
``"tool_calls"`` and confidence is None. With no match it answers as above (with neither
labels nor documents it says that no tool matched and lists the tools). When the last
message is a ``tool`` message it never calls again: it answers with one
``<tool name>: <result>`` line per call, confidence 1.0 when all succeeded and 0.3 when
any result is an error. `tools.routing.local_tools` documents the exact rules.

Usage is counted, not reported: ``input_tokens`` is the number of whitespace-separated
words in the messages and the documents' titles and texts, ``output_tokens`` the number
in the answer (0 for a tool-calling response). The provider is free, so ``cost_usd`` is always 0.
"""

import time
from dataclasses import dataclass

from keel.schemas.model import ModelRequest, ModelResponse, ToolCall, Usage
from keel.schemas.retrieval import Passage
from tools.routing.local_tools import (
    answer_from_tool_results,
    ends_with_tool_results,
    no_tool_text,
    plan_tool_calls,
)
from tools.text import BM25, split_sentences, tokenize

__all__ = ["NOT_FOUND_TEXT", "LocalProvider"]

NOT_FOUND_TEXT = "I could not find this in the knowledge base."
"""The answer when the documents hold no evidence for the question."""

_MAX_SENTENCES = 3
_RELATIVE_CUTOFF = 0.4
# Specificity earned per distinct question token found in the evidence.
_SPECIFICITY_PER_TOKEN = 0.4


@dataclass(frozen=True)
class _Answer:
    text: str
    label: str | None
    citations: list[str]
    confidence: float | None


@dataclass(frozen=True)
class _Sentence:
    passage_index: int
    position: int
    text: str


class LocalProvider:
    """The ``local`` provider: answers from the request's own documents, labels or tool results."""

    name = "local"
    model = "extractive-bm25"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Answer a request; the work is quick and CPU-only, so it runs inline.

        Args:
            request: The normalised model request.

        Returns:
            The extracted answer, chosen label, tool calls or listed tool results.

        """
        return self.respond(request)

    def respond(self, request: ModelRequest) -> ModelResponse:
        """Answer a request synchronously, with the rules in the module docstring.

        Args:
            request: The normalised model request.

        Returns:
            The extracted answer, chosen label, tool calls or listed tool results.

        """
        started = time.perf_counter()
        calls: list[ToolCall] = []
        if ends_with_tool_results(request):
            results = answer_from_tool_results(request.messages)
            answer = _Answer(results.text, None, [], results.confidence)
        elif calls := plan_tool_calls(request):
            answer = _Answer("", None, [], None)
        elif request.labels:
            answer = _classify(tokenize(request.question), request.labels)
        elif request.tools and not request.documents:
            answer = _Answer(no_tool_text(request.tools), None, [], 0.0)
        else:
            answer = _extract(tokenize(request.question), request.documents)
        input_words = sum(len(m.content.split()) for m in request.messages) + sum(
            len(d.title.split()) + len(d.text.split()) for d in request.documents
        )
        return ModelResponse(
            text=answer.text,
            label=answer.label,
            citations=answer.citations,
            tool_calls=calls,
            confidence=answer.confidence,
            finish_reason="tool_calls" if calls else "stop",
            provider=self.name,
            model=self.model,
            usage=Usage(input_tokens=input_words, output_tokens=len(answer.text.split())),
            latency_ms=(time.perf_counter() - started) * 1000,
            cost_usd=0.0,
        )


def _classify(question: list[str], labels: list[str]) -> _Answer:
    wanted = set(question)
    names = [label.partition(":")[0].strip() for label in labels]
    lowered = [name.lower() for name in names]
    matches = [len(wanted & set(tokenize(label))) for label in labels]
    best = max(range(len(labels)), key=lambda i: (matches[i], -i))
    if matches[best] == 0:
        best = lowered.index("other") if "other" in lowered else 0
    matched = matches[best]
    return _Answer(names[best], names[best], [], round(matched / (matched + 1), 3))


def _extract(question: list[str], documents: list[Passage]) -> _Answer:
    wanted = set(question)
    sentences = [
        _Sentence(i, j, text)
        for i, doc in enumerate(documents)
        for j, text in enumerate(split_sentences(doc.text))
    ]
    tokens = [tokenize(s.text) for s in sentences]
    index = BM25(tokens)
    scores = index.scores(question)
    best = max(scores, default=0.0)
    if not wanted or best <= 0:
        return _Answer(NOT_FOUND_TEXT, None, [], 0.0)
    ranked = sorted(range(len(sentences)), key=lambda i: -scores[i])[:_MAX_SENTENCES]
    chosen = sorted(
        (i for i in ranked if scores[i] >= _RELATIVE_CUTOFF * best),
        key=lambda i: (sentences[i].passage_index, sentences[i].position),
    )
    evidence = {t for i in chosen for t in tokens[i]}
    for passage_index in {sentences[i].passage_index for i in chosen}:
        evidence.update(tokenize(documents[passage_index].title))
    return _Answer(
        text=" ".join(sentences[i].text for i in chosen),
        label=None,
        citations=list(dict.fromkeys(documents[sentences[i].passage_index].id for i in chosen)),
        confidence=_confidence(wanted, wanted & evidence, index),
    )


def _confidence(wanted: set[str], found: set[str], index: BM25) -> float:
    coverage = sum(index.idf(t) for t in found) / sum(index.idf(t) for t in wanted)
    specificity = min(1.0, _SPECIFICITY_PER_TOKEN * len(found))
    return round(coverage * specificity, 3)
