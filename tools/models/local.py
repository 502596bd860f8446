"""Keel's keyless, offline model provider: an extractive heuristic, not a language model.

`LocalProvider` never generates text. It copies sentences out of the documents it is
given, or picks one of the labels it is given, using word overlap and BM25; given tools,
it proposes calls by fixed pattern rules and then lists their results. It exists so
that Keel runs end to end without an API key, and so that tests get deterministic
answers. Its confidence is a score of lexical evidence, not a calibrated probability.
All tokens below come from `tools.text.tokenize` (lowercased, stopwords dropped,
lightly stemmed).

Classification (``request.labels`` is non-empty). Each label is written
``"name: keyword keyword ..."``; the name is the text before the colon. When the request
names a ``classifier`` the provider has (`tools.models.triage`: fitted on an agent's
labelled examples) and the label names are that classifier's labels, it decides: the
first label only when its probability is at least 0.5 (the first is the one that needs
nobody), else the most probable other label; confidence is the probability of the label
chosen. Otherwise keywords decide, as follows. A label's tokens
are those of its whole string, name included. The score of a label is the number of
distinct question tokens among its tokens. The highest score wins, ties going to the
earliest label. With no overlap at all the answer is the label named ``other`` (in any
case) if there is one, else the first label. ``text`` and ``label`` are the label name,
and with ``m`` matched tokens::

    confidence = m / (m + 1)        # 0 when nothing matched, 0.5 for one token, ...

Extractive answer (no labels). A question token no document contains is first read as a
typo of the most frequent document token one edit away, if there is one
(`tools.text.respellings`: "pasword" is "password"). Every document is split into
sentences. Sentences are scored against the distinct question tokens Q with BM25 over
the sentences, each indexed with the title of its passage, since a heading such as "The
reset email never arrived" says what the sentences under it are about. Up to three of
the best are kept if they score above zero and at least 40% of the best score, and are
joined in reading order (document order as given, then sentence order). ``citations``
lists the ids of their passages, deduplicated, in that order.

Confidence asks whether the cited text speaks to the whole question, from one article.
The evidence E_d of an article d is the tokens of the selected sentences from its
passages and of those passages' titles, since a heading such as "Resolve sync conflicts"
is part of what is cited. Each question token q has a weight: 1, or 0.5 when q is in none
of the documents given (their titles and texts) and is not a name. A name is a word
capitalised inside a sentence of the question ("Linux", "Notion"; not "Thanks" in "Sync is
stuck. Thanks!") or an acronym of two or more capitals ("HIPAA"); the question is usually
about the thing it names, while an everyday side word ("colleague", "laptop") is often
missing from the very article that answers it. Then::

    coverage(d)    = sum(w(q) for q in Q & E_d) / sum(w(q) for q in Q)
    specificity(d) = min(1, 0.4 * |Q & E_d|)
    confidence     = round(max over d of coverage(d) * specificity(d) * unnamed, 3)

where ``unnamed`` is 0.5 when the question has names and none of their tokens is in the
documents given (titles and texts), else 1. Documents that mention nothing the question
names speak about none of the things it asks about, however well they match its other
words ("Is there a Linux version of the desktop app?" against articles about the desktop
app). When they do mention one of its names, another may be answered by implication: an
article saying a feature is "available on the Plus and Business plans" answers whether it
is on the Free plan.

Taking the best single article, not the union of all, means an answer stitched from
articles that each match a different word of the question ("transfer" from billing,
"workspace" from sharing) does not count as covering it. Specificity asks how many
distinct question words the evidence corroborates: a single shared word (a bare "help",
or "work" in "it doesn't work") is weak evidence that the answer is on topic and caps
confidence at 0.4, two shared words cap it at 0.8 and three or more at 1.0. With no
documents, no question tokens or no sentence scoring above zero, the answer is
`NOT_FOUND_TEXT` with no citations and confidence 0.

Tools (``request.tools`` is non-empty) and tool results. The provider calls tools by
fixed intent rules on the last user message: an arithmetic expression for
``calculator``, a URL for ``http_get``, a request to open a ticket for
``create_ticket``, a unit conversion for a tool that takes ``value``, ``from_unit`` and
``to_unit``, and, for any other tool, word
overlap with the tool's name and description when the tool takes one string. Each
matching rule adds one call; the response then has no text, ``finish_reason`` is
``"tool_calls"`` and confidence is None. With no match it answers as above (with neither
labels nor documents it says that no tool matched and lists the tools). When the last
message is a ``tool`` message it never calls again: it answers with one
``<tool name>: <result>`` line per call, confidence 1.0 when all succeeded and 0.3 when
any result is an error. `tools.models.local_tools` documents the exact rules.

Judging (``request.judge`` is set): the verifier of `tools.models.local_judge` checks the
answer against the question and the documents (the passages it cites); ``judgement`` is
its verdict and ``text`` the same as JSON, confidence None.

Usage is counted, not reported: ``input_tokens`` is the number of whitespace-separated
words in the messages and the documents' titles and texts, ``output_tokens`` the number
in the answer (0 for a tool-calling response). The provider is free, so ``cost_usd`` is always 0.
"""

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass

from keel.schemas.model import Judgement, ModelRequest, ModelResponse, ToolCall, Usage
from keel.schemas.retrieval import Passage
from tools.models.local_judge import judge
from tools.models.local_tools import (
    answer_from_tool_results,
    ends_with_tool_results,
    no_tool_text,
    plan_tool_calls,
)
from tools.models.triage import TriageModels
from tools.text import BM25, respellings, split_sentences, tokenize

__all__ = ["NOT_FOUND_TEXT", "LocalProvider"]

NOT_FOUND_TEXT = "I could not find this in the knowledge base."
"""The answer when the documents hold no evidence for the question."""

_MAX_SENTENCES = 3
_RELATIVE_CUTOFF = 0.4
# Specificity earned per distinct question token found in the evidence.
_SPECIFICITY_PER_TOKEN = 0.4
# Weight of a question token no document uses, unless it is a name.
_UNKNOWN_WEIGHT = 0.5
# What confidence is multiplied by when the documents mention none of the question's names.
_UNNAMED_FACTOR = 0.5
# A capitalised word after a word that does not end a sentence, or an acronym of two or
# more capitals.
_NAME = re.compile(
    r"(?<=[^\s.!?]\s)[A-Z][A-Za-z0-9]*|\b(?=[A-Z0-9]*[A-Z][A-Z0-9]*\b)[A-Z0-9]{2,}\b"
)


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

    def __init__(self, triage: TriageModels | None = None) -> None:
        self.triage = triage or TriageModels({})
        """The classifiers a request's ``classifier`` may name."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Answer a request; the work is quick and CPU-only, so it runs inline.

        A classifier is fitted on its first use, in a thread (a fraction of a second).

        Args:
            request: The normalised model request.

        Returns:
            The extracted answer, chosen label, tool calls or listed tool results.

        """
        if request.classifier is not None:
            await asyncio.to_thread(self.triage.get, request.classifier)
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
        judgement: Judgement | None = None
        if ends_with_tool_results(request):
            results = answer_from_tool_results(request.messages)
            answer = _Answer(results.text, None, [], results.confidence)
        elif calls := plan_tool_calls(request):
            answer = _Answer("", None, [], None)
        elif request.judge is not None:
            judgement = judge(request.judge.question, request.judge.answer, request.documents)
            answer = _Answer(judgement.model_dump_json(), None, [], None)
        elif request.labels:
            answer = self._triage(request) or _classify(tokenize(request.question), request.labels)
        elif request.tools and not request.documents:
            answer = _Answer(no_tool_text(request.tools), None, [], 0.0)
        else:
            answer = _extract(request.question, request.documents)
        input_words = sum(len(m.content.split()) for m in request.messages) + sum(
            len(d.title.split()) + len(d.text.split()) for d in request.documents
        )
        return ModelResponse(
            text=answer.text,
            label=answer.label,
            judgement=judgement,
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

    def _triage(self, request: ModelRequest) -> _Answer | None:
        classifier = self.triage.get(request.classifier) if request.classifier else None
        names = [label.partition(":")[0].strip() for label in request.labels]
        if classifier is None or sorted(names) != sorted(classifier.labels):
            return None
        label, probability = classifier.classify(request.question, default=names[0])
        return _Answer(label, label, [], round(probability, 3))


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


def _extract(question: str, documents: list[Passage]) -> _Answer:
    sentences = [
        _Sentence(i, j, text)
        for i, doc in enumerate(documents)
        for j, text in enumerate(split_sentences(doc.text))
    ]
    tokens = [tokenize(s.text) for s in sentences]
    titles = [tokenize(doc.title) for doc in documents]
    known = Counter(t for words in titles + tokens for t in words)
    asked = [_respelt(t, known) for t in tokenize(question)]
    wanted = set(asked)
    headed = BM25([titles[s.passage_index] + t for s, t in zip(sentences, tokens, strict=True)])
    scores = headed.scores(asked)
    best = max(scores, default=0.0)
    if not wanted or best <= 0:
        return _Answer(NOT_FOUND_TEXT, None, [], 0.0)
    ranked = sorted(range(len(sentences)), key=lambda i: -scores[i])[:_MAX_SENTENCES]
    chosen = sorted(
        (i for i in ranked if scores[i] >= _RELATIVE_CUTOFF * best),
        key=lambda i: (sentences[i].passage_index, sentences[i].position),
    )
    evidence: dict[str, set[str]] = {}
    for i in chosen:
        passage = sentences[i].passage_index
        article = evidence.setdefault(documents[passage].document_id, set())
        article.update(tokens[i], titles[passage])
    names = {_respelt(t, known) for name in _NAME.findall(question) for t in tokenize(name)}
    weights = {t: 1.0 if t in known or t in names else _UNKNOWN_WEIGHT for t in wanted}
    unnamed = _UNNAMED_FACTOR if names and not names & known.keys() else 1.0
    covered = max(_confidence(weights, wanted & e) for e in evidence.values())
    return _Answer(
        text=" ".join(sentences[i].text for i in chosen),
        label=None,
        citations=list(dict.fromkeys(documents[sentences[i].passage_index].id for i in chosen)),
        confidence=round(covered * unnamed, 3),
    )


def _respelt(token: str, known: Counter[str]) -> str:
    """`token`, or the most frequent known word it may be a typo of."""
    candidates = respellings(token, known)
    return min(candidates, key=lambda w: (-known[w], w)) if candidates else token


def _confidence(weights: dict[str, float], found: set[str]) -> float:
    coverage = sum(weights[t] for t in found) / sum(weights.values())
    specificity = min(1.0, _SPECIFICITY_PER_TOKEN * len(found))
    return coverage * specificity
