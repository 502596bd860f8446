"""Rankings and their fusion: top candidates of one method, and hybrid from several.

A `Ranking` is one method's candidates (chunk positions) with their scores, best first.
`fuse` combines rankings as `SearchConfig` says: reciprocal-rank fusion (``rrf``) or a
weighted sum of normalised scores (``score``). A candidate missing from a ranking counts
as that ranking's worst (rrf: nothing; score: its lowest normalised score). Ties keep
chunk order, so results are deterministic.
"""

from dataclasses import dataclass

import numpy as np

from keel.schemas.retrieval import SearchConfig

__all__ = ["Ranking", "fuse", "top"]


@dataclass(frozen=True)
class Ranking:
    """Candidates of one method: chunk positions and scores, best first."""

    positions: np.ndarray
    scores: np.ndarray
    weight: float = 1.0


def top(scores: np.ndarray, depth: int, *, positive: bool = False) -> Ranking:
    """The best `depth` positions of a score vector (NaN scores are left out).

    Args:
        scores: One score per chunk; ``-inf`` excludes a chunk.
        depth: How many to keep.
        positive: Keep only scores above zero (BM25: no shared term, no match).

    """
    keep = np.isfinite(scores) & ((scores > 0) if positive else True)
    candidates = np.flatnonzero(keep)
    if len(candidates) > depth:
        part = np.argpartition(-scores[candidates], depth - 1)[:depth]
        candidates = candidates[part]
    # Best first; equal scores in chunk order.
    order = np.lexsort((candidates, -scores[candidates]))
    chosen = candidates[order]
    return Ranking(chosen, scores[chosen])


def _normalised(ranking: Ranking, how: str) -> np.ndarray:
    scores = ranking.scores.astype(np.float64)
    if how == "zscore":
        spread = scores.std()
        return (scores - scores.mean()) / spread if spread > 0 else np.zeros_like(scores)
    low, high = scores.min(), scores.max()
    return (scores - low) / (high - low) if high > low else np.ones_like(scores)


def fuse(rankings: list[Ranking], config: SearchConfig, k: int) -> Ranking:
    """The best `k` chunks by the fusion `config` names."""
    totals: dict[int, float] = {}
    if config.fusion == "rrf":
        for ranking in rankings:
            for rank, position in enumerate(ranking.positions.tolist(), start=1):
                totals[position] = totals.get(position, 0.0) + ranking.weight / (
                    config.rrf_k + rank
                )
    else:
        parts = [(r, _normalised(r, config.normalization)) for r in rankings if len(r.positions)]
        every = {p for r, _ in parts for p in r.positions.tolist()}
        for ranking, normalised in parts:
            given = dict(zip(ranking.positions.tolist(), normalised.tolist(), strict=True))
            floor = float(normalised.min())
            for position in every:
                totals[position] = totals.get(position, 0.0) + ranking.weight * given.get(
                    position, floor
                )
    if not totals:
        return Ranking(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
    positions = np.fromiter(totals, dtype=np.int64, count=len(totals))
    scores = np.fromiter(totals.values(), dtype=np.float64, count=len(totals))
    order = np.lexsort((positions, -scores))[:k]
    return Ranking(positions[order], scores[order])
