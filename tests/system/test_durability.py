"""Processes die; runs do not. Workers and the API are real processes, killed with SIGKILL."""

import asyncio
import signal
import sqlite3
from collections import Counter

import httpx

from keel.testing.stack import eventually, start_run, wait_status
from tests.conftest import CONFIDENT, UNSURE

IO_NODES = ("retrieval.search", "model.call")


def _completed_steps(db_file, run_id: str) -> Counter[str]:
    """How often each activity of a run completed, from the step journal (a real SQLite file)."""
    with sqlite3.connect(db_file) as db:
        rows = db.execute(
            "SELECT activity FROM steps WHERE run_id = ? AND outcome = 'completed'", (run_id,)
        ).fetchall()
    return Counter(activity for (activity,) in rows)


async def test_worker_killed_mid_run_resumes_without_rerunning_nodes(make_stack):
    stack = make_stack()
    worker = await stack.start_worker()
    await stack.start_api()
    # A decision waits for a worker to take the update: after the kill, the new worker
    # first replays the run, which on a loaded shared machine takes more than 30 s.
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=90) as http:
        run_id = (await start_run(http, UNSURE))["run_id"]
        view = await wait_status(http, run_id, {"awaiting_review"})
        # The journal writes in batches off the hot path; let this batch land before the kill.
        for _ in range(50):
            before = _completed_steps(stack.db_file, run_id)
            if before["review.open"]:
                break
            await asyncio.sleep(0.1)
        assert before["retrieval.search"] == before["review.open"] == 1, before
        assert before["model.call"] == 3, before  # classify, answer, verify

        worker.send_signal(signal.SIGKILL)
        worker.wait()
        await stack.start_worker()

        review_id = view["pending_review"]["review_id"]
        decided = await http.post(
            f"/v1/reviews/{review_id}/decision",
            json={"action": "approve", "action_hash": view["pending_review"]["action_hash"]},
        )
        assert decided.status_code == 200, decided.text
        done = await wait_status(http, run_id, {"completed"})
        assert done["result"]["answer"] == view["pending_review"]["proposed_answer"]

    # Nothing that had completed ran again; the review's closing and what follows it are new
    # (the journal writes in batches, so its last rows land shortly after the run ends).
    async def journaled() -> bool:
        after = _completed_steps(stack.db_file, run_id)
        return after["review.close"] == 1 and all(after[k] == n for k, n in before.items())

    await eventually(journaled, timeout=5)
    after = _completed_steps(stack.db_file, run_id)
    assert after["review.open"] == 1 and after["review.close"] == 1, after


async def test_run_started_with_no_worker_completes_when_one_arrives(make_stack):
    stack = make_stack()
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        view = (await http.get(f"/v1/runs/{run_id}")).json()
        assert view["status"] == "running"  # durable before any worker has seen it
        await stack.start_worker()
        done = await wait_status(http, run_id, {"completed"})
    assert done["result"]["citations"]

    async def journaled() -> bool:
        return set(_completed_steps(stack.db_file, run_id)) >= set(IO_NODES)

    await eventually(journaled, timeout=5)


async def test_api_restart_mid_run_has_no_effect_on_the_run(make_stack):
    stack = make_stack()
    await stack.start_worker()
    api = await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        run_id = (await start_run(http, UNSURE, idempotency_key="restart-1"))["run_id"]
        view = await wait_status(http, run_id, {"awaiting_review"})

    api.send_signal(signal.SIGKILL)
    api.wait()
    await stack.start_api()

    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        again = await wait_status(http, run_id, {"awaiting_review"})
        assert again["pending_review"] == view["pending_review"]
        retried = await http.post(
            "/v1/runs",
            json={"agent": "support", "input": UNSURE, "idempotency_key": "restart-1"},
        )
        assert retried.json()["run_id"] == run_id
        review_id = view["pending_review"]["review_id"]
        decided = await http.post(
            f"/v1/reviews/{review_id}/decision",
            json={
                "action": "edit",
                "answer": "Which app?",
                "action_hash": view["pending_review"]["action_hash"],
            },
        )
        assert decided.status_code == 200, decided.text
        done = await wait_status(http, run_id, {"completed"})
    assert done["result"]["answer"] == "Which app?"

    async def answered_once() -> bool:
        return _completed_steps(stack.db_file, run_id)["model.call"] == 3

    await eventually(answered_once, timeout=5)


async def test_review_deadline_rejects_the_run(make_stack):
    stack = make_stack(KEEL_REVIEW_TIMEOUT_S="2")
    await stack.start_worker()
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        run_id = (await start_run(http, UNSURE))["run_id"]
        view = await wait_status(http, run_id, {"awaiting_review"})
        done = await wait_status(http, run_id, {"rejected"}, timeout=30)
        review = (await http.get(f"/v1/reviews/{view['pending_review']['review_id']}")).json()
    assert done["result"]["answer"] is None
    assert review["status"] == "expired" and "deadline" in review["comment"]
