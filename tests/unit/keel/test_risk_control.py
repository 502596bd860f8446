"""The certified threshold: its guarantee holds on simulated data, and it refuses honestly."""

import math

import numpy as np
import pytest

from keel.risk_control import (
    GRID,
    clopper_pearson_upper,
    control_risk,
    control_risk_arrays,
    min_labels,
    render_risk_control,
)
from keel.schemas.calibration import Observation

ALPHA, DELTA = 0.05, 0.1
FORCED = 0.05  # share of runs escalated whatever the threshold


def _draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs from a known model: confidence ~ U(0, 1), P(needed | c) = 0.6 (1 − c)²."""
    confidence = rng.uniform(size=n)
    needed = rng.uniform(size=n) < 0.6 * (1 - confidence) ** 2
    return confidence, needed, rng.uniform(size=n) < FORCED


def _true_risk(threshold: float) -> float:
    """Share of all runs sent unreviewed and wrong: (1 − forced) ∫_λ¹ 0.6 (1 − c)² dc."""
    return (1 - FORCED) * 0.2 * (1 - threshold) ** 3


def test_the_guarantee_holds_over_two_thousand_calibrations() -> None:
    rng = np.random.default_rng(7)
    best = 1 - (ALPHA / ((1 - FORCED) * 0.2)) ** (1 / 3)  # the threshold where risk = α
    chosen, naive = [], []
    for _ in range(2000):
        confidence, needed, forced = _draw(rng, 300)
        result = control_risk_arrays(confidence, needed, ALPHA, DELTA, forced=forced)
        chosen.append(1.0 if result.threshold is None else result.threshold)
        # The point estimate alone: the lowest λ whose observed rate is ≤ α.
        sent_wrong = np.sort(confidence[needed & ~forced])
        wrong = (sent_wrong.size - np.searchsorted(sent_wrong, GRID)) / confidence.size
        naive.append(GRID[np.flatnonzero(wrong <= ALPHA)[-1]])
    violated = np.mean([_true_risk(t) > ALPHA for t in chosen])
    assert violated <= DELTA + 0.02  # 2,000 draws: a standard error of 0.7 points
    assert np.mean([_true_risk(t) > ALPHA for t in naive]) > 0.3  # the test can fail
    assert np.mean(chosen) - best < 0.1  # and the guarantee is not bought by escalating all


def test_the_certified_rate_and_bound_are_those_at_the_threshold() -> None:
    confidence, needed, forced = _draw(np.random.default_rng(1), 400)
    result = control_risk_arrays(confidence, needed, ALPHA, DELTA, forced=forced)
    assert result.status == "certified" and result.threshold is not None
    sent = ~forced & (confidence >= result.threshold)
    assert result.answered == pytest.approx(sent.mean())
    assert result.wrong_sent == pytest.approx((sent & needed).mean())
    errors = int((sent & needed).sum())
    assert result.wrong_sent_upper == pytest.approx(clopper_pearson_upper(errors, 400, DELTA))
    assert result.wrong_sent <= result.wrong_sent_upper <= ALPHA
    one_lower = result.threshold - 0.001  # the next candidate was not certified
    below = ~forced & (confidence >= one_lower) & needed
    assert clopper_pearson_upper(int(below.sum()), 400, DELTA) > ALPHA


def test_clopper_pearson_matches_known_bounds() -> None:
    assert clopper_pearson_upper(0, 45, 0.1) == pytest.approx(1 - 0.1 ** (1 / 45))
    assert clopper_pearson_upper(3, 100, 0.05) == pytest.approx(0.0757, abs=1e-4)
    assert clopper_pearson_upper(10, 10, 0.1) == 1.0


def test_the_threshold_moves_the_right_way() -> None:
    confidence, needed, forced = _draw(np.random.default_rng(3), 500)

    def threshold(alpha: float = ALPHA, delta: float = DELTA, flip: int = 0) -> float:
        labels = needed.copy()
        labels[np.argsort(-confidence)[:flip]] = True  # the most confident become wrong
        found = control_risk_arrays(confidence, labels, alpha, delta, forced=forced)
        return 1.0 if found.threshold is None else found.threshold

    assert threshold(alpha=0.02) >= threshold() >= threshold(alpha=0.1)
    assert threshold(delta=0.01) >= threshold() >= threshold(delta=0.3)
    assert threshold(flip=10) >= threshold()
    # More confidence escalates more: the risk estimate never rises with the threshold.
    result = [control_risk_arrays(confidence, needed, a, DELTA) for a in (0.03, 0.05, 0.1)]
    assert [r.answered for r in result] == sorted(r.answered or 0.0 for r in result)


def test_too_few_labels_suggest_nothing_and_say_how_many_more() -> None:
    assert min_labels(0.05, 0.1) == 45  # ln 0.1 / ln 0.95 = 44.9
    assert min_labels(0.2, 0.1) == 30  # the floor
    assert min_labels(0.01, 0.05) == math.ceil(math.log(0.05) / math.log(0.99))
    three = control_risk([Observation(confidence=0.9, needed_person=False)] * 3, ALPHA, DELTA)
    assert three.status == "too_few_labels" and three.threshold is None
    assert (three.labels, three.min_labels, three.more_labels_needed) == (3, 45, 42)
    assert "needs at least 45 labels (42 more)" in render_risk_control(three)[0]
    empty = control_risk([], ALPHA, DELTA)
    assert empty.status == "too_few_labels" and empty.more_labels_needed == 45
    # 45 runs all answered and all right: just enough, (1 − α)⁴⁵ ≤ δ.
    enough = control_risk_arrays(np.full(45, 0.9), np.zeros(45, bool), ALPHA, DELTA)
    assert enough.status == "certified" and enough.threshold == 0.0 and enough.answered == 1.0
    assert enough.wrong_sent == 0.0 and enough.wrong_sent_upper == pytest.approx(0.0499, abs=1e-4)
    with pytest.raises(ValueError, match="alpha and delta"):
        control_risk([], 0.0, DELTA)


def test_all_wrong_certifies_only_what_sends_few_of_them() -> None:
    confidence = np.linspace(0.2, 0.8, 100)  # …, 0.7939, 0.8
    wrong = control_risk_arrays(confidence, np.ones(100, bool), ALPHA, DELTA)
    # One wrong answer in 100 is certified (P(Bin(100, α) ≤ 1) = 0.037), two are not (0.118).
    assert wrong.status == "certified" and wrong.threshold == 0.794
    assert wrong.answered == wrong.wrong_sent == 0.01
    confident = control_risk_arrays(np.ones(100), np.ones(100, bool), ALPHA, DELTA)
    assert confident.status == "none_certified" and confident.threshold is None
    lines = render_risk_control(confident)
    assert lines == [
        "no threshold certified from 100 labels: none keeps wrong answers sent without review "
        "≤ 5.0 % with probability ≥ 90 %; escalate everything"
    ]


def test_ties_are_answered_together_and_forced_runs_never() -> None:
    tied = np.full(100, 0.5)
    needed = np.arange(100) < 3  # 3 % of the tied runs needed a person
    result = control_risk_arrays(tied, needed, ALPHA, DELTA)
    # 3/100 has an upper bound of 6.5 % > α: the tie is escalated as one.
    assert result.threshold == 0.501 and result.answered == 0.0
    forced = control_risk_arrays(tied, np.ones(100, bool), ALPHA, DELTA, forced=np.ones(100, bool))
    assert forced.threshold == 0.0 and forced.answered == 0.0 and forced.wrong_sent == 0.0


def test_weights_count_audit_samples_for_the_runs_they_stand_for() -> None:
    rng = np.random.default_rng(5)
    confidence, needed, _ = _draw(rng, 20_000)
    every = control_risk_arrays(confidence, needed, ALPHA, DELTA)
    assert every == control_risk_arrays(confidence, needed, ALPHA, DELTA, weights=np.ones(20_000))
    # Every escalated run is labelled, a tenth of the confident ones: each of those stands
    # for ten. Weighted, the labels speak for all runs; unweighted, for a skewed sample.
    kept = (confidence < 0.5) | (rng.uniform(size=20_000) < 0.1)
    weights = np.where(confidence < 0.5, 1.0, 10.0)[kept]
    audited = control_risk_arrays(confidence[kept], needed[kept], ALPHA, DELTA, weights=weights)
    assert audited == control_risk_arrays(
        confidence[kept], needed[kept], ALPHA, DELTA, weights=7 * weights
    )
    assert audited.effective_labels == pytest.approx(weights.sum() ** 2 / (weights**2).sum(), 1e-4)
    assert audited.effective_labels < audited.labels == kept.sum()
    assert every.threshold is not None and audited.threshold is not None
    assert every.answered is not None and audited.answered is not None
    assert abs(audited.threshold - every.threshold) < 0.05
    assert abs(audited.answered - every.answered) < 0.05
    skewed = control_risk_arrays(confidence[kept], needed[kept], ALPHA, DELTA)
    assert skewed.answered is not None and every.answered - skewed.answered > 0.2
    assert "effective, weighted" in render_risk_control(audited)[0]
    few = control_risk_arrays(
        np.full(50, 0.9), np.zeros(50, bool), ALPHA, DELTA, weights=[1, 9] * 25
    )
    assert few.labels == 50 and few.effective_labels == pytest.approx(50 * 25 / 41, abs=1e-3)
    assert (
        few.status == "too_few_labels" and few.more_labels_needed == 24
    )  # ⌈(45 − 30.5) × 50/30.5⌉
    with pytest.raises(ValueError, match="positive"):
        control_risk_arrays([0.5], [True], ALPHA, DELTA, weights=[0.0])
