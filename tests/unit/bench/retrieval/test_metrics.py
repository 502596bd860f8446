"""The bench's ranking metrics on hand-computed rankings."""

import math

import pytest

from bench.retrieval.metrics import mrr_at, ndcg_at, recall_at

KNOWN_ITEM = {"d2": 1}
RANKING = ["d1", "d2", "d3"]


def test_known_item_at_rank_two() -> None:
    assert ndcg_at(RANKING, KNOWN_ITEM) == pytest.approx(1 / math.log2(3))
    assert recall_at(RANKING, KNOWN_ITEM) == 1.0
    assert mrr_at(RANKING, KNOWN_ITEM) == 0.5


def test_perfect_ranking_scores_one() -> None:
    assert ndcg_at(["d2", "d1"], KNOWN_ITEM) == 1.0
    assert mrr_at(["d2", "d1"], KNOWN_ITEM) == 1.0


def test_relevant_document_below_the_cut_off_counts_for_nothing() -> None:
    assert ndcg_at(RANKING, KNOWN_ITEM, k=1) == 0.0
    assert recall_at(RANKING, KNOWN_ITEM, k=1) == 0.0
    assert mrr_at(RANKING, KNOWN_ITEM, k=1) == 0.0


def test_graded_judgements_with_two_relevant_documents() -> None:
    qrels = {"a": 2, "b": 1}
    # Found b at rank 1 and a at rank 3: DCG = 1/log2(2) + 2/log2(4) = 2;
    # ideal DCG = 2/log2(2) + 1/log2(3).
    assert ndcg_at(["b", "x", "a"], qrels) == pytest.approx(2 / (2 + 1 / math.log2(3)))
    assert recall_at(["b", "x", "y"], qrels) == 0.5
    assert mrr_at(["x", "a", "b"], qrels) == 0.5


def test_no_judged_relevant_document_scores_zero() -> None:
    assert ndcg_at(RANKING, {"d1": 0}) == 0.0
    assert recall_at(RANKING, {}) == 0.0
