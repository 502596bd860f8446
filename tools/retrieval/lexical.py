"""BM25 with `bm25s`: Lucene scoring (k1=1.5, b=0.75), English stopwords, Snowball stemmer.

A `LexicalIndex` is two bm25s indexes over the same chunks: one of title and text, one of
titles alone, so a search can weigh a title match on its own (`SearchConfig.title_weight`).
Both are saved as bm25s files and loaded fully into memory.

Indexes always drop the Lucene English stopwords. A query may drop more
(`SearchConfig.query_stopwords="extended"`): also the function and question words of
`tools.text.STOPWORDS` ("how", "what", "my"…), which carry no content in a question.

A query token no chunk contains is read as a typo (`tools.text.respellings`): it is
replaced by the indexed terms one edit away from it, so "pasword" finds "password".
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Self, cast

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from keel.schemas.retrieval import QueryStopwords
from tools.text import STOPWORDS, respellings

__all__ = ["LexicalIndex", "tokenize"]

# bm25s sets its own logger to DEBUG when imported, and logs every index build there.
logging.getLogger("bm25s").setLevel(logging.WARNING)

_STOPWORDS: dict[QueryStopwords, list[str]] = {
    "english": sorted(STOPWORDS_EN),
    "extended": sorted(set(STOPWORDS_EN) | STOPWORDS),
}

_K1 = 1.5
_B = 0.75


def tokenize(texts: Sequence[str], stopwords: QueryStopwords = "english") -> list[list[str]]:
    """Lowercased word tokens of each text, stopwords dropped, Snowball-stemmed."""
    tokens = bm25s.tokenize(
        list(texts),
        stopwords=_STOPWORDS[stopwords],
        stemmer=Stemmer.Stemmer("english"),
        return_ids=False,
        show_progress=False,
    )
    return cast(list[list[str]], tokens)  # bm25s types both return_ids answers as one


def _index(tokens: list[list[str]]) -> bm25s.BM25 | None:
    """A BM25 index of token lists; None when they hold no token at all (no titles)."""
    if not any(tokens):
        return None
    retriever = bm25s.BM25(k1=_K1, b=_B, method="lucene")
    retriever.index(tokens, show_progress=False)
    return retriever


def _respelt(retriever: bm25s.BM25 | None, tokens: list[str]) -> list[str]:
    """`tokens` with each one the index lacks replaced by its respellings, if any."""
    if retriever is None:
        return tokens
    vocabulary = retriever.vocab_dict
    return [fixed for t in tokens for fixed in (respellings(t, vocabulary) or [t])]


def _scores(retriever: bm25s.BM25 | None, tokens: list[str], size: int) -> np.ndarray:
    known = [t for t in tokens if retriever is not None and t in retriever.vocab_dict]
    if retriever is None or not known:
        return np.zeros(size, dtype=np.float32)
    return retriever.get_scores(known).astype(np.float32)


def _load(folder: Path) -> bm25s.BM25 | None:
    if not folder.exists():
        return None
    return bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)


class LexicalIndex:
    """BM25 scores of a query against every chunk, in chunk order."""

    def __init__(self, body: bm25s.BM25 | None, title: bm25s.BM25 | None, size: int) -> None:
        self._body = body
        self._title = title
        self.size = size

    @classmethod
    def build(cls, titles: Sequence[str], texts: Sequence[str]) -> Self:
        """Index chunks given as parallel lists of titles and texts (at least one chunk)."""
        bodies = [f"{title}\n{text}" for title, text in zip(titles, texts, strict=True)]
        return cls(_index(tokenize(bodies)), _index(tokenize(titles)), len(bodies))

    def save(self, folder: Path) -> None:
        """Write the bm25s files under `folder`."""
        for name, retriever in (("body", self._body), ("title", self._title)):
            if retriever is not None:
                retriever.save(str(folder / name), show_progress=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> Self:
        """Read an index `save` wrote."""
        return cls(_load(folder / "body"), _load(folder / "title"), size)

    def scores(
        self,
        query: str,
        *,
        text_weight: float,
        title_weight: float,
        stopwords: QueryStopwords = "english",
    ) -> np.ndarray:
        """``text_weight * bm25(title + text) + title_weight * bm25(title)`` per chunk."""
        tokens = _respelt(self._body, tokenize([query], stopwords)[0])
        total = np.zeros(self.size, dtype=np.float32)
        if text_weight:
            total += text_weight * _scores(self._body, tokens, self.size)
        if title_weight:
            total += title_weight * _scores(self._title, tokens, self.size)
        return total
