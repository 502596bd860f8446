"""Top candidates of one method, and reciprocal-rank and score fusion of several."""

import numpy as np
import pytest

from keel.schemas.retrieval import SearchConfig
from tools.retrieval.fusion import Ranking, fuse, top


def _ranking(pairs: list[tuple[int, float]], weight: float = 1.0) -> Ranking:
    return Ranking(
        np.array([p for p, _ in pairs], dtype=np.int64),
        np.array([s for _, s in pairs], dtype=np.float64),
        weight,
    )


def test_top_keeps_the_best_in_order_and_ties_in_chunk_order() -> None:
    scores = np.array([0.5, 2.0, 0.0, 2.0, -np.inf, 1.0])
    best = top(scores, 3)
    assert best.positions.tolist() == [1, 3, 5] and best.scores.tolist() == [2.0, 2.0, 1.0]
    assert top(scores, 10, positive=True).positions.tolist() == [1, 3, 5, 0]
    assert top(scores, 10).positions.tolist() == [1, 3, 5, 0, 2]


def test_rrf_sums_weighted_reciprocal_ranks() -> None:
    lexical = _ranking([(1, 9.0), (2, 5.0)])
    dense = _ranking([(2, 0.9), (3, 0.8)], weight=2.0)
    fused = fuse([lexical, dense], SearchConfig(fusion="rrf", rrf_k=10), k=3)
    assert fused.positions.tolist() == [2, 3, 1]
    assert fused.scores.tolist() == pytest.approx([1 / 12 + 2 / 11, 2 / 12, 1 / 11])


def test_score_fusion_normalises_each_method_minmax() -> None:
    lexical = _ranking([(1, 10.0), (2, 6.0), (4, 2.0)])
    dense = _ranking([(4, 0.9), (2, 0.5)], weight=3.0)
    fused = fuse([lexical, dense], SearchConfig(fusion="score"), k=4)
    # lexical: 1 → 1, 2 → 0.5, 4 → 0; dense: 4 → 1, 2 → 0, missing 1 → 0 (its floor).
    assert dict(zip(fused.positions.tolist(), fused.scores.tolist(), strict=True)) == {
        4: pytest.approx(3.0),
        1: pytest.approx(1.0),
        2: pytest.approx(0.5),
    }


def test_score_fusion_zscore() -> None:
    lexical = _ranking([(1, 3.0), (2, 1.0)])
    dense = _ranking([(2, 0.8), (1, 0.4)])
    fused = fuse([lexical, dense], SearchConfig(fusion="score", normalization="zscore"), k=2)
    assert fused.scores.tolist() == pytest.approx([0.0, 0.0])
    assert fused.positions.tolist() == [1, 2]  # a tie keeps chunk order


def test_fusing_nothing_is_empty() -> None:
    empty = _ranking([])
    assert len(fuse([empty, empty], SearchConfig(fusion="rrf"), k=5).positions) == 0
    assert len(fuse([empty, empty], SearchConfig(fusion="score"), k=5).positions) == 0
