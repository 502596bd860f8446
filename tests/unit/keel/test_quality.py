"""The wrong-sent rate from audit grades, with its Clopper–Pearson interval."""

import math
from datetime import UTC, datetime

import pytest

from keel.quality import render_wrong_sent, wrong_sent
from keel.risk_control import clopper_pearson_interval
from keel.tables import LabelRow


def _label(n: int, wrong: bool, *, source: str = "audit", weight: float = 20.0) -> LabelRow:
    return LabelRow(
        review_id=f"run-{n}.audit",
        run_id=f"run-{n}",
        agent="support",
        reason="audit",
        confidence=0.8,
        verdict="wrong" if wrong else "correct",
        needed_person=wrong,
        decided_at=datetime.now(UTC),
        source=source,
        weight=weight,
    )


def _at_most(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@pytest.mark.parametrize(("errors", "n"), [(2, 50), (7, 40), (1, 30)])
def test_the_interval_leaves_each_tail_its_share(errors: int, n: int) -> None:
    lower, upper = clopper_pearson_interval(errors, n, 0.95)
    assert 0.0 < lower < errors / n < upper < 1.0
    # At the upper end, seeing this few errors or fewer has chance 2.5 %; at the lower end,
    # seeing this many or more.
    assert _at_most(errors, n, upper) == pytest.approx(0.025, abs=1e-6)
    assert 1 - _at_most(errors - 1, n, lower) == pytest.approx(0.025, abs=1e-6)


def test_no_errors_put_the_interval_at_zero_and_all_errors_at_one() -> None:
    lower, upper = clopper_pearson_interval(0, 30, 0.95)
    assert lower == 0.0 and _at_most(0, 30, upper) == pytest.approx(0.025, abs=1e-6)
    lower, upper = clopper_pearson_interval(40, 40, 0.95)
    assert upper == 1.0 and 1 - _at_most(39, 40, lower) == pytest.approx(0.025, abs=1e-6)


def test_the_rate_is_the_share_of_graded_audits_that_were_wrong() -> None:
    labels = [_label(n, wrong=n < 2) for n in range(50)]
    labels.append(_label(99, wrong=True, source="escalation", weight=1.0))  # not an audit
    estimate = wrong_sent("support", labels, audit_rate=0.05)
    assert (estimate.graded, estimate.wrong, estimate.effective_graded) == (50, 2, 50.0)
    assert estimate.wrong_sent_rate == pytest.approx(0.04)
    assert (estimate.lower, estimate.upper) == clopper_pearson_interval(2, 50, 0.95)
    assert estimate.lower == pytest.approx(0.0049, abs=1e-4)
    assert estimate.upper == pytest.approx(0.1371, abs=1e-4)
    assert render_wrong_sent(estimate) == (
        "support: wrong answers sent without review 4.0 % (95 % interval 0.5 %–13.7 %), "
        "2 wrong of 50 graded audits (sampling 5.0 %)"
    )


def test_grades_sampled_at_different_rates_are_weighted() -> None:
    # 10 grades at p = 0.5 (weight 2), all correct; 10 at p = 0.1 (weight 10), all wrong.
    labels = [_label(n, wrong=False, weight=2.0) for n in range(10)]
    labels += [_label(n + 10, wrong=True, weight=10.0) for n in range(10)]
    estimate = wrong_sent("support", labels)
    assert estimate.wrong_sent_rate == pytest.approx(100 / 120)
    assert estimate.effective_graded == pytest.approx(120**2 / 1040, abs=1e-3)
    assert estimate.lower is not None and estimate.upper is not None
    assert estimate.lower < 100 / 120 < estimate.upper


def test_without_grades_there_is_no_rate() -> None:
    estimate = wrong_sent("support", [_label(1, True, source="escalation", weight=1.0)])
    assert estimate.graded == 0 and estimate.wrong_sent_rate is None and estimate.upper is None
    assert render_wrong_sent(estimate) == "support: no audit graded yet"
