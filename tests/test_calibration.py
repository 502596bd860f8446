"""Escalation calibration: scoring, threshold suggestion, the labelled set, verdicts as labels."""

import asyncio
import json
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from keel.calibration import load_labelled, score, suggest_threshold
from keel.db import create_engine, init_db, session_factory
from keel.errors import KeelUserError
from keel.labels import label_for, observations
from keel.schemas.calibration import Observation
from keel.tables import LabelRow, ReviewRow
from keel.testing.stack import Stack, wait_status
from tests.test_cli import keel

LABELLED = Path(__file__).parent / "data" / "support_labelled.jsonl"
KB = Path(__file__).parents[1] / "tools" / "retrieval" / "kb"
# A loaded shared machine replays each workflow task from history: runs are slow, not stuck.
SLOW = 180.0


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


@pytest.mark.timeout(600)
async def test_decided_reviews_become_labels_that_keel_calibrate_scores(make_stack, tmp_path):
    stack = make_stack()
    await stack.start_worker()
    await stack.start_api()
    verdicts = {"approve": None, "edit": "Open Share on the note.", "reject": None}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:

        async def decide(action: str, answer: str | None) -> None:
            started = await http.post(
                "/v1/runs", json={"agent": "support", "input": f"{action}: it doesn't work"}
            )
            run_id = started.json()["run_id"]
            await wait_status(http, run_id, {"awaiting_review"}, timeout=SLOW)
            review = (await http.get("/v1/reviews", params={"run_id": run_id})).json()["reviews"][0]
            body = {"action": action, "action_hash": review["action_hash"], "reviewer": "ann"}
            if answer:
                body["answer"] = answer
            decided = await http.post(f"/v1/reviews/{review['id']}/decision", json=body)
            assert decided.status_code == 200, decided.text
            await wait_status(http, run_id, {"completed", "rejected"}, timeout=SLOW)

        await asyncio.gather(*(decide(action, answer) for action, answer in verdicts.items()))
    with sqlite3.connect(stack.db_file) as db:
        rows = db.execute("SELECT verdict, needed_person, reviewer FROM labels").fetchall()
    assert sorted(rows) == [("approve", 0, "ann"), ("edit", 1, "ann"), ("reject", 1, "ann")]

    done = await keel(stack, "--json", "calibrate", "support")
    assert done.returncode == 0, done.stderr
    (verdict,) = json.loads(done.stdout)
    assert verdict["source"] == "reviewer verdicts" and verdict["labels"] == 3
    assert verdict["at_threshold"]["precision"] == pytest.approx(2 / 3)
    assert verdict["at_threshold"]["recall"] == 1.0
    assert verdict["risk"]["status"] == "too_few_labels" and verdict["risk"]["threshold"] is None
    text = await keel(stack, "calibrate", "support")
    assert "reviewer verdicts: 3 labels" in text.stdout and "precision 0.667" in text.stdout
    assert "needs at least 45 labels (42 more)" in text.stdout

    bad = await keel(stack, "calibrate", "nobody")
    assert bad.returncode == 1 and "unknown agent 'nobody'" in bad.stderr


async def _seed_labels(stack: Stack, confidences: list[float], needed_below: float) -> None:
    """Verdicts on runs escalated below threshold 1.0: needed when confidence < needed_below."""
    engine = create_engine(f"sqlite+aiosqlite:///{stack.db_file}")
    try:
        await init_db(engine)
        async with session_factory(engine)() as session:
            for confidence in confidences:
                row = _review("rejected" if confidence < needed_below else "approved")
                row.id = row.run_id = f"run-{uuid.uuid4().hex}"
                row.confidence, row.threshold = confidence, 1.0
                session.add(label_for(row))
            await session.commit()
    finally:
        await engine.dispose()


async def test_keel_calibrate_certifies_a_threshold_or_says_how_many_labels_are_missing(tmp_path):
    stack = Stack("127.0.0.1:1", tmp_path / "keel")  # calibrating verdicts needs no server
    await _seed_labels(stack, [0.1, 0.11, 0.12], needed_below=0.25)
    few = await keel(stack, "calibrate", "support")
    assert few.returncode == 0, few.stderr
    assert (
        "no threshold suggested: 3 labels; wrong answers sent without review ≤ 5.0 % with "
        "probability ≥ 90 % needs at least 45 labels (42 more)"
    ) in few.stdout

    # 60 verdicts at 0.10…0.69; the 15 below 0.25 needed a person.
    await _seed_labels(stack, [round(0.1 + i / 100, 2) for i in range(3, 60)], needed_below=0.25)
    done = await keel(stack, "calibrate", "support")
    assert (
        "certified threshold 0.241: wrong answers sent without review ≤ 5.0 % with "
        "probability ≥ 90 %, from 60 labels"
    ) in done.stdout
    assert "wrong sent 0.0 % (upper bound 3.8 %), answered without review 75.0 %" in done.stdout
    (risk,) = (r["risk"] for r in json.loads((await keel(stack, "--json", *done.args)).stdout))
    assert risk["status"] == "certified" and risk["labels"] == 60 and risk["threshold"] == 0.241
    assert risk["wrong_sent"] == 0.0 and risk["answered"] == 0.75
    assert risk["wrong_sent_upper"] == pytest.approx(1 - 0.1 ** (1 / 60))

    # ln 0.1 / ln 0.98 = 114.0: 54 labels more before a 2 % promise can be made.
    strict = await keel(stack, "calibrate", "support", "--alpha", "0.02", "--delta", "0.1")
    assert "≤ 2.0 % with probability ≥ 90 % needs at least 114 labels (54 more)" in strict.stdout


@pytest.mark.timeout(600)
async def test_keel_calibrate_runs_a_labelled_set_on_a_stack_of_its_own(make_stack, tmp_path):
    stack = make_stack()  # only its settings: calibration starts a server and worker of its own
    labelled = tmp_path / "set.jsonl"
    labelled.write_text(
        '{"question": "How do I turn on two-factor authentication?", "answerable": true, '
        '"split": "tune"}\n'
        '{"question": "What is the weather in Paris tomorrow?", "answerable": false, '
        '"split": "holdout"}\n'
    )
    done = await keel(stack, "--json", "calibrate", "support", "--labelled", str(labelled))
    assert done.returncode == 0, done.stderr
    verdicts, measured = json.loads(done.stdout)
    assert verdicts["source"] == "reviewer verdicts"
    assert measured["labels"] == 2
    scores = measured["at_threshold"]
    assert (scores["true_positives"], scores["true_negatives"]) == (1, 1)
    assert scores["precision"] == 1.0 and scores["recall"] == 1.0
    assert set(measured["splits"]) == {"tune", "holdout"}
    assert "running 2 labelled questions" in done.stderr
