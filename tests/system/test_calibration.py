"""`keel calibrate` on real stacks: reviewers' verdicts become labels it scores, and a
labelled set it runs on a stack of its own."""

import asyncio
import json
import sqlite3

import httpx
import pytest

from keel.testing.stack import wait_status
from tests.system.test_cli import keel

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

    done = await keel(stack, "--json", "calibrate", "support", "--target-recall", "0.5")
    assert done.returncode == 0, done.stderr
    (verdict,) = json.loads(done.stdout)
    assert verdict["source"] == "reviewer verdicts" and verdict["labels"] == 3
    assert verdict["at_threshold"]["precision"] == pytest.approx(2 / 3)
    assert verdict["at_threshold"]["recall"] == 1.0
    text = await keel(stack, "calibrate", "support")
    assert "reviewer verdicts: 3 labels" in text.stdout and "precision 0.667" in text.stdout

    bad = await keel(stack, "calibrate", "nobody")
    assert bad.returncode == 1 and "unknown agent 'nobody'" in bad.stderr


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
