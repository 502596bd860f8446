"""The `local` provider's verifier: an answer is checked against its passages and question.

A lexical judge, not a language model. It reads the answer's sentences
(`tools.text.split_sentences`) against the question and the passages the answer cites
(the request's documents). All tokens come from `tools.text.tokenize`; a question token
no passage contains is read as a typo of a passage word one edit away, as the extractive
answerer does (`tools.text.respellings`).

Per sentence s of the answer:

- **support**: the share of s's tokens found in one sentence of a cited passage (the
  best one). An extracted sentence scores 1; a sentence is supported from 0.8 on.
- **relevance**: the weighted share of the question's tokens Q that s, or the title of
  the passage that supports it (its section heading), contains. A token
  q weighs its BM25 idf over the passages' sentences (a word every sentence has says
  little; a word only a title has counts as rare); a token no passage contains weighs
  half what the rarest word of the sentences does. Names (a capitalised word inside a
  sentence of the question, or an acronym) weigh double.

A sentence is dropped (`unsupported`) when it is not supported, or when its relevance is
below `RELATIVE_RELEVANCE` of the best sentence's: padding from another section matches
the question on a side word, the sentence that answers matches on its subject. The best
supported sentence is always kept.

Question coverage is the weighted share of Q the kept sentences and their headings
contain. The verdict:

    answered      coverage >= ANSWERED, every sentence supported, every name covered
    partial       coverage >= PARTIAL (or answered, but a sentence was unsupported, or
                  the kept sentences never mention a name the question asks about)
    not_answered  otherwise, or no sentence is supported

`missing` lists the question's words the kept sentences do not contain, heaviest first.
The thresholds were tuned on the `support` agent's tune split only.
"""

from collections import Counter

from keel.schemas.model import Judgement, Verdict
from keel.schemas.retrieval import Passage
from tools.text import BM25, names, respelt, split_sentences, tokenize

__all__ = ["ANSWERED", "PARTIAL", "RELATIVE_RELEVANCE", "SUPPORTED", "judge"]

SUPPORTED = 0.8
"""Share of a sentence's tokens one passage sentence must contain for it to be supported."""
RELATIVE_RELEVANCE = 0.5
"""A kept sentence's relevance, relative to the best sentence's."""
ANSWERED = 0.5
"""Question coverage from which the answer answers the question."""
PARTIAL = 0.35
"""Question coverage from which the answer answers part of it."""

_NAME_WEIGHT = 2.0
_UNKNOWN_FACTOR = 0.5
_MISSING_WORDS = 5


def judge(question: str, answer: str, passages: list[Passage]) -> Judgement:
    """Judge `answer` to `question` against the `passages` it cites (module docstring).

    Args:
        question: What the customer asked.
        answer: The drafted answer.
        passages: The passages the answer cites.

    Returns:
        The verdict, the sentences dropped (by index) and the question's missing words.

    """
    sentences = split_sentences(answer)
    sources = [(p, tokenize(s)) for p in passages for s in split_sentences(p.text)]
    titles = {p.id: tokenize(p.title) for p in passages}
    known = Counter(t for _, words in sources for t in words) + Counter(
        t for words in titles.values() for t in words
    )
    index = BM25([words for _, words in sources] or [[]])
    named = {respelt(t, known) for n in names(question) for t in tokenize(n)}
    rarest = max((index.idf(t) for _, words in sources for t in words), default=0.0)
    weights: dict[str, float] = {}
    for token in (respelt(t, known) for t in tokenize(question)):
        weight = index.idf(token) if token in known else _UNKNOWN_FACTOR * rarest
        weights[token] = weight * (_NAME_WEIGHT if token in named else 1.0)
    total = sum(weights.values())
    if not sentences or not total:
        return Judgement(verdict="not_answered", sentences=sentences, missing=_missing(weights))
    evidence: list[set[str]] = []
    support: list[float] = []
    for sentence in sentences:
        words = set(tokenize(sentence))
        best, source = max(
            ((len(words & set(w)) / len(words) if words else 0.0, p) for p, w in sources),
            key=lambda pair: pair[0],
            default=(0.0, None),
        )
        support.append(best)
        evidence.append(words | set(titles[source.id]) if source is not None else words)
    relevance = [_share(weights, e) for e in evidence]
    grounded = [i for i, s in enumerate(support) if s >= SUPPORTED]
    if not grounded:
        return Judgement(
            verdict="not_answered",
            unsupported=list(range(len(sentences))),
            sentences=sentences,
            missing=_missing(weights),
        )
    top = max(relevance[i] for i in grounded)
    kept = [i for i in grounded if relevance[i] >= RELATIVE_RELEVANCE * top]
    covered = set[str]().union(*(evidence[i] for i in kept))
    coverage = _share(weights, covered)
    whole = len(grounded) == len(sentences) and named <= covered
    verdict = _verdict(coverage, whole=whole)
    return Judgement(
        verdict=verdict,
        unsupported=[i for i in range(len(sentences)) if i not in kept],
        missing=_missing({t: w for t, w in weights.items() if t not in covered}),
        sentences=sentences,
    )


def _verdict(coverage: float, *, whole: bool) -> Verdict:
    if coverage >= ANSWERED and whole:
        return "answered"
    return "partial" if coverage >= PARTIAL else "not_answered"


def _share(weights: dict[str, float], found: set[str]) -> float:
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in found) / total if total else 0.0


def _missing(weights: dict[str, float]) -> str:
    heaviest = sorted(weights, key=lambda t: (-weights[t], t))[:_MISSING_WORDS]
    return ", ".join(heaviest)
