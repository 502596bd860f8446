"""Text utilities shared by retrieval and the local model provider.

Everything here is deterministic and dependency-free so that search results and the
local provider's answers are reproducible in tests.

The tokenizer lowercases, splits on anything that is not a letter or digit, drops
English stopwords (including question words such as "how" and "what", which carry no
content in a help-centre query) and applies a deliberately light stemmer. Product and
feature names are content and are kept. The stemmer runs three steps:

1. Plurals: ``-ies`` becomes ``-y``, ``-es`` is removed after ``s``, ``x``, ``z``,
   ``ch`` or ``sh``, and a final ``-s`` is removed unless the word ends in ``ss``,
   ``us`` or ``is``.
2. ``-ing`` and ``-ed`` are removed when at least three letters remain; ``-ly`` when
   at least four remain.
3. Normalisation: a trailing doubled consonant other than ``ss`` is halved and a
   trailing ``e`` is removed, for words longer than three letters.

So "resetting" and "reset", "invoices" and "invoice", "syncing" and "sync",
"billing" and "bill", "shared" and "share" all reach the same stem. Stems need not be
words ("invoice" becomes "invoic"); they only need to agree with each other.

`respellings` reads an unknown word as a typo of a known one: the known words one edit
away (a letter added, dropped or changed, or two neighbouring letters swapped), so
"pasword" finds "password". Only words of six letters or more are respelt; shorter
words sit one edit from too many others ("latex" and "later", "watch" and "match").

`BM25` is Okapi BM25 with the non-negative idf ``log(1 + (N - n + 0.5) / (n + 0.5))``
used by Lucene, so every term, even one in every document, counts for something.
"""

import math
import re
from collections import Counter
from collections.abc import Collection, Sequence

__all__ = [
    "BM25",
    "STOPWORDS",
    "names",
    "respellings",
    "respelt",
    "split_sentences",
    "stem",
    "tokenize",
]

STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all also am an and any are aren as at be because
    been before being below between both but by can cannot could couldn d did didn do
    does doesn doing don down during each either else ever every few for from further get
    gets getting got had hadn has hasn have haven having he her here hers herself him
    himself his how i if in into is isn it its itself just let ll m may me might more
    most much must mustn my myself need needs no nor not now of off on once one only or
    other our ours ourselves out over own please re s same shall shan she should shouldn
    so some such t than that the their theirs them themselves then there these they this
    those through to too under until up us ve very via want was wasn we were weren what
    when where which while who whom why will with won would wouldn y you your yours
    yourself yourselves
    """.split()
)
"""Common English words dropped by `tokenize`, including question words."""

_RESPELL_MIN_LENGTH = 6
_WORD = re.compile(r"[a-z0-9]+")
_VOWELS = frozenset("aeiou")
# A sentence ends at . ! or ? followed by whitespace and a capital, digit or quote, so
# "e.g. the" and "v1.2" do not split.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
# Markdown list markers would otherwise become one-word "sentences" such as "1.".
_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
# A capitalised word after a word that does not end a sentence, or an acronym of two or
# more capitals.
_NAME = re.compile(
    r"(?<=[^\s.!?]\s)[A-Z][A-Za-z0-9]*|\b(?=[A-Z0-9]*[A-Z][A-Z0-9]*\b)[A-Z0-9]{2,}\b"
)


def stem(word: str) -> str:
    """Reduce a lowercase word to its stem with the light rules in the module docstring.

    Args:
        word: A lowercase alphanumeric word.

    Returns:
        The stem; words of three letters or fewer are returned unchanged.

    """
    if len(word) <= 3:
        return word
    word = _strip_plural(word)
    if word.endswith("ing") and len(word) - 3 >= 3:
        word = word[:-3]
    elif word.endswith("ed") and len(word) - 2 >= 3:
        word = word[:-2]
    elif word.endswith("ly") and len(word) - 2 >= 4:
        word = word[:-2]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in _VOWELS | {"s"}:
        word = word[:-1]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def _strip_plural(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Split text into stemmed content tokens, in order, keeping repeats.

    Args:
        text: Any text.

    Returns:
        Stems of the non-stopword words of ``text``.

    """
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def respellings(word: str, known: Collection[str]) -> list[str]:
    """The known words one edit from `word`, sorted; none for a known or short word.

    Args:
        word: A token, e.g. from `tokenize`.
        known: The vocabulary it may be a typo of (a set, for speed).

    Returns:
        The candidates, in alphabetical order.

    """
    if len(word) < _RESPELL_MIN_LENGTH or word in known:
        return []
    return sorted(w for w in known if _one_edit_apart(word, w))


def respelt(token: str, known: Counter[str]) -> str:
    """`token`, or the most frequent known word it may be a typo of (`respellings`).

    Args:
        token: A token, e.g. from `tokenize`.
        known: The vocabulary with each word's frequency.

    Returns:
        The token itself when it is known, short or one edit from no known word.

    """
    candidates = respellings(token, known)
    return min(candidates, key=lambda w: (-known[w], w)) if candidates else token


def names(text: str) -> list[str]:
    """The names in `text`: capitalised words inside a sentence, and acronyms.

    "Linux" is a name, "Thanks" in "Sync is stuck. Thanks!" is not; "HIPAA" is.

    Args:
        text: Prose, e.g. a question.

    Returns:
        The names, in order, as written.

    """
    return _NAME.findall(text)


def _one_edit_apart(a: str, b: str) -> bool:
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        swapped = len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
        return len(diff) == 1 or (swapped and a[diff[1]] == b[diff[0]])
    short, long = sorted((a, b), key=len)
    first = next((i for i in range(len(short)) if short[i] != long[i]), len(short))
    return short[first:] == long[first + 1 :]


def split_sentences(text: str) -> list[str]:
    """Split text into sentences; line breaks always end a sentence.

    Args:
        text: Prose, possibly with Markdown list markers at line starts.

    Returns:
        Non-empty sentences with surrounding whitespace and list markers removed.

    """
    sentences: list[str] = []
    for line in text.splitlines():
        line = _LIST_MARKER.sub("", line).strip()
        sentences.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return sentences


class BM25:
    """Okapi BM25 ranking over a fixed collection of tokenized documents."""

    def __init__(self, documents: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75):
        """Index the documents.

        Args:
            documents: One token list per document, e.g. from `tokenize`.
            k1: Term-frequency saturation; higher lets repeated terms count for longer.
            b: Length normalisation, from 0 (none) to 1 (full).

        """
        self.k1 = k1
        self.b = b
        self._term_counts = [Counter(doc) for doc in documents]
        self._lengths = [len(doc) for doc in documents]
        total = sum(self._lengths)
        self._avg_length = total / len(self._lengths) if total else 1.0
        self._doc_freq: Counter[str] = Counter()
        for counts in self._term_counts:
            self._doc_freq.update(counts.keys())

    def __len__(self) -> int:
        return len(self._term_counts)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a term, always positive.

        Args:
            term: A token; unseen terms get the idf of a term found in no document.

        Returns:
            ``log(1 + (N - n + 0.5) / (n + 0.5))`` for N documents, n containing the term.

        """
        n = self._doc_freq.get(term, 0)
        return math.log(1 + (len(self) - n + 0.5) / (n + 0.5))

    def scores(self, query_tokens: Sequence[str]) -> list[float]:
        """Score every document against a query.

        Args:
            query_tokens: Query tokens; each distinct token counts once.

        Returns:
            One score per document, in collection order; 0.0 where no token matches.

        """
        terms = [(t, self.idf(t)) for t in dict.fromkeys(query_tokens) if t in self._doc_freq]
        result: list[float] = []
        for counts, length in zip(self._term_counts, self._lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / self._avg_length)
            score = 0.0
            for term, idf in terms:
                tf = counts.get(term, 0)
                if tf:
                    score += idf * tf * (self.k1 + 1) / (tf + norm)
            result.append(score)
        return result
