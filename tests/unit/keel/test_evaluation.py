"""`keel eval`'s figures: key facts, per-category scores, intervals, costs, risk/coverage."""

from pathlib import Path

import pytest

from keel.calibration import load_labelled
from keel.evaluation import (
    ALL,
    ANSWERED,
    clopper_pearson,
    evaluate,
    has_key_facts,
    model_costs,
    risk_coverage,
    route_costs,
    wrong_answer,
)
from keel.schemas.calibration import LabelledQuestion, LabelledRun
from keel.schemas.model import Usage
from keel.schemas.routing import Ledger, LedgerEntry

ROOT = Path(__file__).parents[3]
TUNE = ROOT / "workflows" / "agents" / "support" / "evals" / "tune.jsonl"
OLDER = ROOT / "tests" / "data" / "support_labelled.jsonl"
TWO_FACTS = [["10 characters", "at least 10"], ["60 minutes"]]


def _question(answerable: bool, category: str, key_facts: list[list[str]] | None = None):
    return LabelledQuestion(
        question="q?", answerable=answerable, category=category, key_facts=key_facts or []
    )


def _run(
    question: LabelledQuestion,
    *,
    confidence: float = 0.9,
    escalated: bool = False,
    forced: bool = False,
    answer: str | None = "an answer",
    latency_s: float = 1.0,
    cost: float = 0.0,
    reason: str | None = None,
) -> LabelledRun:
    usage = Usage(input_tokens=10, output_tokens=5)
    entry = LedgerEntry(
        step="answer", deployment="d", provider="local", model="m", usage=usage, cost_usd=cost
    )
    return LabelledRun.model_validate(
        {
            "question": question,
            "confidence": confidence,
            "escalated": escalated,
            "forced": forced,
            "reason": reason if escalated else None,
            "answer": answer,
            "latency_s": latency_s,
            "ledger": Ledger(entries=[entry]),
        }
    )


def test_an_answer_holds_a_fact_when_one_alternative_is_in_it_whatever_the_case() -> None:
    assert has_key_facts("Use AT LEAST 10 letters; the link lasts 60 minutes.", TWO_FACTS)
    assert has_key_facts("10 characters, 60 minutes", TWO_FACTS)
    assert not has_key_facts("at least 10 characters", TWO_FACTS)  # the second fact is missing
    assert not has_key_facts("an hour", [["60 minutes"]])  # paraphrases do not count
    assert not has_key_facts(None, TWO_FACTS)
    assert has_key_facts("anything", [])  # no facts: nothing can be missing


def test_an_answer_is_wrong_when_a_person_was_needed_or_a_fact_is_missing() -> None:
    answerable = _question(True, "answerable", [["60 minutes"]])
    assert not wrong_answer(answerable, "It expires after 60 minutes.")
    assert wrong_answer(answerable, "It expires after an hour.")
    assert wrong_answer(_question(False, "legal"), "Here is how: 60 minutes.")


def test_the_interval_is_the_exact_clopper_pearson_one() -> None:
    assert clopper_pearson(0, 0) is None
    none_wrong = clopper_pearson(0, 20)
    assert none_wrong is not None and none_wrong.low == 0.0
    assert none_wrong.high == pytest.approx(1 - 0.025 ** (1 / 20), abs=1e-8)
    all_wrong = clopper_pearson(20, 20)
    assert all_wrong is not None and all_wrong.high == 1.0
    assert all_wrong.low == pytest.approx(0.025 ** (1 / 20), abs=1e-8)
    # 3 of 30 (a textbook value: 2.11 % to 26.53 %), and it holds the estimate.
    some = clopper_pearson(3, 30)
    assert some is not None and some.confidence == 0.95
    assert some.low == pytest.approx(0.02112, abs=1e-4)
    assert some.high == pytest.approx(0.26528, abs=1e-4)


def _mixed() -> list[LabelledRun]:
    fact = [["60 minutes"]]
    return [
        _run(_question(True, "answerable", fact), answer="60 minutes it is"),  # right, sent
        _run(_question(True, "answerable", fact), answer="about an hour"),  # incomplete, sent
        _run(
            _question(True, "answerable", fact),
            confidence=0.4,
            escalated=True,
            reason="low_confidence",
            answer="60 minutes",
        ),
        _run(_question(False, "legal"), confidence=0.95),  # answered: wrong
        _run(
            _question(False, "legal"),
            confidence=0.95,
            escalated=True,
            forced=True,
            reason="off_topic",
        ),
        _run(
            _question(False, "account_specific"),
            confidence=0.2,
            escalated=True,
            reason="low_confidence",
        ),
    ]


def test_scores_are_given_overall_and_per_category() -> None:
    report = evaluate(_mixed(), config="c", agent="support", labelled="f", threshold=0.6)
    groups = {g.group: g for g in report.groups}
    assert [g.group for g in report.groups] == [ALL, "answerable", "legal", "account_specific"]
    overall = groups[ALL]
    assert overall.questions == 6 and overall.sent == 3 and overall.sent_wrong == 2
    assert overall.sent_incomplete == 1
    assert overall.wrong_sent_rate == pytest.approx(2 / 3)
    assert overall.answered == 0.5 and overall.answerable_answered == pytest.approx(2 / 3)
    e = overall.escalation
    assert (e.true_positives, e.false_positives, e.false_negatives, e.true_negatives) == (
        2,
        1,
        1,
        2,
    )
    assert e.precision == pytest.approx(2 / 3) and e.recall == pytest.approx(2 / 3)
    interval = overall.wrong_sent_interval
    assert interval is not None and interval.low < 2 / 3 < interval.high
    legal = groups["legal"]
    assert legal.escalation.recall == 0.5 and legal.wrong_sent_rate == 1.0
    assert legal.answerable == 0 and legal.answerable_answered is None
    answerable = groups["answerable"]
    assert answerable.escalation.recall is None  # nobody there needed a person
    assert answerable.escalation.precision == 0.0
    assert answerable.wrong_sent_rate == 0.5 and answerable.sent_incomplete == 1
    unsorted = [_run(LabelledQuestion(question="q?", answerable=True))]
    plain = evaluate(unsorted, config="c", agent="a", labelled="f", threshold=0.6)
    assert [g.group for g in plain.groups] == [ALL]  # no categories: no per-category rows


def test_the_curve_answers_more_as_the_threshold_falls() -> None:
    curve = risk_coverage(_mixed())
    # Open runs by confidence: 0.95 legal (wrong), 0.9 ×2 (one incomplete), 0.4 right, 0.2
    # account-specific (wrong); the forced off-topic run is never answered.
    assert [p.threshold for p in curve] == [0.95, 0.9, 0.4, 0.2]
    assert [p.answered for p in curve] == pytest.approx([1 / 6, 3 / 6, 4 / 6, 5 / 6])
    assert [p.wrong_sent for p in curve] == pytest.approx([1.0, 2 / 3, 2 / 4, 3 / 5])
    assert risk_coverage([]) == []


def test_cost_and_latency_are_given_per_route_and_model_calls_per_model() -> None:
    runs = [
        _run(_question(True, "answerable"), latency_s=1.0, cost=0.001),
        _run(_question(True, "answerable"), latency_s=3.0, cost=0.003),
        _run(_question(True, "answerable"), latency_s=2.0, cost=0.002),
        _run(_question(False, "legal"), escalated=True, reason="off_topic", latency_s=0.5),
    ]
    answered, escalated = route_costs(runs)
    assert answered.route == ANSWERED and answered.runs == 3
    assert answered.cost_usd_total == pytest.approx(0.006)
    assert answered.cost_usd_mean == pytest.approx(0.002)
    assert answered.latency_s_mean == 2.0 and answered.latency_s_p50 == 2.0
    assert answered.latency_s_p95 == 3.0
    assert escalated.route == "escalated: off_topic" and escalated.latency_s_p95 == 0.5
    (model,) = model_costs(runs)
    assert (model.provider, model.model, model.calls) == ("local", "m", 4)
    assert (model.input_tokens, model.output_tokens) == (40, 20)
    assert model.cost_usd == pytest.approx(0.006)


def test_both_labelled_sets_load_with_their_splits_and_facts() -> None:
    tune = load_labelled(TUNE)
    assert {q.split for q in tune} == {"tune"}
    assert all(q.id and q.category for q in tune)
    assert all(q.key_facts for q in tune if q.answerable)
    older = load_labelled(OLDER)
    assert {q.split for q in older} == {"tune", "holdout"}
    assert all(q.key_facts == [] and q.category is None for q in older)
