"""`keel calibrate` on real stacks: reviewers' verdicts become labels it scores, and a
labelled set it runs on a stack of its own."""

import asyncio
import json
import sqlite3
import uuid

import httpx
import pytest

from keel.db import create_engine, init_db, session_factory
from keel.labels import grade_label, label_for
from keel.testing.stack import Stack, wait_status
from tests.system.test_cli import keel
from tests.unit.keel.test_calibration import _review

# A loaded shared machine replays each workflow task from history: runs are slow, not stuck.
SLOW = 180.0


@pytest.mark.timeout(600)
async def test_decided_reviews_become_labels_that_keel_calibrate_scores(make_stack, tmp_path):
    stack = make_stack()
    await stack.start_worker()
    await stack.start_api()
    verdicts = {"approve": None, "edit": "Open Share on the note.", "reject": None}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:

        async def decide(action: str, answer: str | None) -> None:
            # One vague question for all three: the help centre has no confident answer
            # (a word such as "edit" in it would find one).
            started = await http.post(
                "/v1/runs", json={"agent": "support", "input": "it doesn't work"}
            )
            run_id = started.json()["run_id"]
            await wait_status(http, run_id, {"awaiting_review"}, timeout=SLOW)
            review = (await http.get("/v1/reviews", params={"run_id": run_id})).json()["reviews"][0]
            # The reviewer sees the evidence the run decided on.
            assert review["signals"]["confidence"] == review["confidence"]
            assert review["signals"]["verdict"] in ("answered", "partial", "not_answered")
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
    with sqlite3.connect(stack.db_file) as db:
        kept = [json.loads(s) for (s,) in db.execute("SELECT signals FROM labels").fetchall()]
    assert all(0 <= signals["confidence"] <= 1 for signals in kept)  # labels keep the evidence

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

    # The point estimate of before stays on demand: the lowest threshold keeping recall ≥ 0.9.
    recall = await keel(stack, "calibrate", "support", "--target-recall", "0.9")
    (line,) = [x for x in recall.stdout.splitlines() if "suggested (recall ≥ 0.9)" in x]
    assert "threshold 0.235" in line and "recall 0.933" in line


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
    # Two runs fit no score: it says why, and how many it needs.
    fit = await keel(stack, "calibrate", "support", "--labelled", str(labelled), "--fit")
    assert fit.returncode == 1, fit.stdout
    assert "needs at least 30 labelled runs the score decides; there are" in fit.stderr
    # Without a labelled set it fits on reviewer verdicts: this stack has none.
    alone = await keel(stack, "calibrate", "support", "--fit")
    assert alone.returncode == 1 and "there are 0" in alone.stderr


async def test_keel_calibrate_weighs_audit_grades_and_reports_the_wrong_sent_rate(tmp_path):
    stack = Stack("127.0.0.1:1", tmp_path / "keel")  # calibrating verdicts needs no server
    await _seed_labels(stack, [round(0.1 + i / 100, 2) for i in range(60)], needed_below=0.25)
    # 40 answers sent without review at confidence 0.9, sampled at p = 0.05: 2 were wrong.
    engine = create_engine(f"sqlite+aiosqlite:///{stack.db_file}")
    try:
        async with session_factory(engine)() as session:
            for n in range(40):
                row = _review("graded", reason="audit", kind="audit", confidence=0.9)
                row.id, row.run_id = f"run-{n}.audit", f"run-{n}"
                row.sampling_rate, row.grade = 0.05, "wrong" if n < 2 else "correct"
                session.add(grade_label(row))
            await session.commit()
    finally:
        await engine.dispose()

    done = await keel(stack, "--json", "calibrate", "support")
    assert done.returncode == 0, done.stderr
    (verdicts,) = json.loads(done.stdout)
    assert verdicts["labels"] == 100
    # Kish: (60 + 40·20)² / (60 + 40·20²) = 860² / 16060.
    assert verdicts["risk"]["effective_labels"] == pytest.approx(860**2 / 16060, abs=1e-3)
    wrong = verdicts["wrong_sent"]
    assert (wrong["graded"], wrong["wrong"], wrong["audit_rate"]) == (40, 2, 0.05)
    assert wrong["wrong_sent_rate"] == 0.05
    text = await keel(stack, "calibrate", "support")
    assert "100 labels (46.1 effective, weighted)" in text.stdout
    assert (
        "support: wrong answers sent without review 5.0 % (95 % interval 0.6 %–16.9 %), "
        "2 wrong of 40 graded audits (sampling 5.0 %)"
    ) in text.stdout
