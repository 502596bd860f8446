"""Escalation calibration: scoring, threshold suggestion, the labelled set, verdicts as labels."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from keel.calibration import load_labelled, score, suggest_threshold
from keel.errors import KeelUserError
from keel.labels import grade_label, label_for, observations
from keel.schemas.calibration import Observation
from keel.tables import LabelRow, ReviewRow

TESTS = Path(__file__).parents[2]
LABELLED = TESTS / "data" / "support_labelled.jsonl"
KB = TESTS.parent / "tools" / "retrieval" / "kb"


def _obs(confidence: float, needed: bool, forced: bool = False) -> Observation:
    return Observation(confidence=confidence, needed_person=needed, forced=forced)


def test_scores_count_escalations_against_labels() -> None:
    found = [_obs(0.2, True), _obs(0.5, False), _obs(0.9, True), _obs(0.95, False, forced=True)]
    s = score(found, 0.6)
    assert (s.true_positives, s.false_positives, s.false_negatives, s.true_negatives) == (
        1,
        2,
        1,
        0,
    )
    assert s.precision == pytest.approx(1 / 3) and s.recall == pytest.approx(0.5)
    assert score([_obs(0.9, False)], 0.6).precision is None  # nothing escalated
    assert score([_obs(0.9, False)], 0.6).recall is None  # nothing needed a person


def test_the_suggestion_is_the_lowest_threshold_reaching_the_recall() -> None:
    found = [_obs(0.1, True), _obs(0.3, True), _obs(0.5, False), _obs(0.7, True), _obs(0.9, False)]
    half = suggest_threshold(found, 0.6)
    assert half is not None and half.threshold == pytest.approx(0.4)  # catches 0.1 and 0.3
    assert half.recall == pytest.approx(2 / 3) and half.precision == 1.0
    full = suggest_threshold(found, 1.0)
    assert full is not None and full.threshold == pytest.approx(0.8) and full.recall == 1.0
    forced = [_obs(0.9, True, forced=True), _obs(0.8, False)]
    only_forced = suggest_threshold(forced, 0.95)
    assert only_forced is not None and only_forced.threshold == 0.0
    assert only_forced.precision == 1.0
    assert suggest_threshold([_obs(0.5, False)], 0.95) is None


def test_the_shipped_labelled_set_is_large_mixed_and_split() -> None:
    questions = load_labelled(LABELLED)
    assert len(questions) >= 60
    assert len({q.question.lower() for q in questions}) == len(questions)
    unanswerable = [q for q in questions if not q.answerable]
    assert 0.3 <= len(unanswerable) / len(questions) <= 0.6
    for answerable in (True, False):
        group = [q for q in questions if q.answerable is answerable]
        tune = sum(q.split == "tune" for q in group)
        assert abs(2 * tune - len(group)) <= 1  # each class split in halves
    articles = {p.stem for p in KB.glob("*.md")}
    assert {q.article for q in questions if q.answerable} == articles  # every article asked
    assert all(q.article is None for q in unanswerable)


def test_a_bad_labelled_file_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"question": "a?", "answerable": true}\n\n{"question": "b?"}\n')
    with pytest.raises(KeelUserError, match=r"set.jsonl:3: not a labelled question"):
        load_labelled(path)
    with pytest.raises(KeelUserError, match="cannot read"):
        load_labelled(tmp_path / "missing.jsonl")


def _review(status: str, reason: str = "low_confidence", **extra: object) -> ReviewRow:
    now = datetime.now(UTC)
    fields = {
        "id": f"run-1.review-{status}",
        "run_id": "run-1",
        "agent": "support",
        "status": status,
        "reason": reason,
        "question": "q",
        "proposed_answer": "a",
        "citations": [],
        "passages": [],
        "confidence": 0.4,
        "threshold": 0.6,
        "created_at": now,
        "deadline": now,
        "decided_at": now,
        **extra,
    }
    return ReviewRow(**fields)


def test_a_persons_verdict_is_a_label_and_nothing_else_is() -> None:
    approve, edit, reject = (label_for(_review(s)) for s in ("approved", "edited", "rejected"))
    assert approve is not None and approve.verdict == "approve" and not approve.needed_person
    assert edit is not None and edit.needed_person and reject is not None and reject.needed_person
    assert label_for(_review("expired")) is None
    assert label_for(_review("cancelled")) is None
    assert label_for(_review("approved", deadline_path="approve_if_low_risk")) is None


def test_only_confidence_reviews_calibrate_and_other_reasons_are_forced() -> None:
    labels = [
        label_for(_review("approved")),
        label_for(_review("rejected", reason="off_topic", confidence=0.9)),
        label_for(_review("edited", confidence=0.7)),  # above its threshold: not the threshold
        label_for(_review("rejected", reason="tool_approval", confidence=None)),
    ]
    found = observations([label for label in labels if isinstance(label, LabelRow)])
    assert [(o.confidence, o.needed_person, o.forced) for o in found] == [
        (0.4, False, False),
        (0.9, True, True),
        (0.7, True, True),
    ]


def test_a_graded_audit_is_a_label_weighing_one_over_its_sampling_probability() -> None:
    audit = _review(
        "graded", reason="audit", kind="audit", grade="wrong", sampling_rate=0.05, confidence=0.9
    )
    label = grade_label(audit)
    assert (label.source, label.verdict, label.needed_person) == ("audit", "wrong", True)
    assert label.weight == pytest.approx(20.0)
    assert label_for(audit) is None  # no escalation was decided
    escalation = label_for(_review("approved"))
    assert escalation is not None and (escalation.source, escalation.weight) == ("escalation", 1)
    # Sent without review, so a threshold decides it: never forced.
    assert [
        (o.confidence, o.needed_person, o.forced, o.weight)
        for o in observations([escalation, label])
    ] == [(0.4, False, False, 1.0), (0.9, True, False, pytest.approx(20.0))]
    with pytest.raises(ValueError, match="not a graded audit"):
        grade_label(_review("approved"))
    with pytest.raises(ValueError, match="no sampling probability"):
        grade_label(_review("graded", reason="audit", kind="audit", grade="correct"))
