"""Ranking metrics at a cut-off, for known-item and graded relevance judgements."""

import math
from collections.abc import Mapping, Sequence

__all__ = ["mrr_at", "ndcg_at", "recall_at"]


def ndcg_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain of the first `k` of `ranking`.

    Gain is the judged grade (linear), discounted by ``log2(rank + 1)``; 0 when nothing
    is relevant.
    """
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    best = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    if best == 0:
        return 0.0
    gain = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    return gain / best


def recall_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Share of the relevant documents found in the first `k` of `ranking`."""
    wanted = {doc for doc, grade in relevant.items() if grade > 0}
    if not wanted:
        return 0.0
    return len(wanted.intersection(ranking[:k])) / len(wanted)


def mrr_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document in the first `k` (0 when none)."""
    for i, doc in enumerate(ranking[:k]):
        if relevant.get(doc, 0) > 0:
            return 1 / (i + 1)
    return 0.0
