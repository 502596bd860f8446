"""The hash-chained audit trail on a secured stack: what a reviewed run records, and
tampering detected."""

import sqlite3

from keel.audit import GENESIS, verify_trail
from keel.schemas.audit import AuditEntry
from keel.testing.stack import wait_status
from tests.conftest import UNSURE
from tests.system.secured import Secured, keel


async def reviewed_run(secured: Secured) -> str:
    """A support run that escalates, is claimed and approved by a reviewer, and completes."""
    async with secured.client("submitter") as submitter, secured.client("reviewer") as reviewer:
        started = await submitter.post("/v1/runs", json={"agent": "support", "input": UNSURE})
        run_id = started.json()["run_id"]
        run = await wait_status(submitter, run_id, {"awaiting_review"})
        review_id = run["pending_review"]["review_id"]
        review = (await reviewer.get(f"/v1/reviews/{review_id}")).json()
        claimed = await reviewer.post(f"/v1/reviews/{review_id}/claim", json={})
        assert claimed.status_code == 200, claimed.text
        decision = {"action": "approve", "action_hash": review["action_hash"], "comment": "fine"}
        decided = await reviewer.post(f"/v1/reviews/{review_id}/decision", json=decision)
        assert decided.status_code == 200, decided.text
        await wait_status(submitter, run_id, {"completed"})
    return run_id


async def test_a_reviewed_run_leaves_a_verifiable_chain(secured: Secured) -> None:
    run_id = await reviewed_run(secured)
    submitter_id, reviewer_id = secured.keys["submitter"]["id"], secured.keys["reviewer"]["id"]
    async with secured.client("submitter") as submitter:
        trail = (await submitter.get(f"/v1/runs/{run_id}/audit")).json()
    entries = [AuditEntry.model_validate(e) for e in trail["entries"]]
    assert verify_trail(entries) is None
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == GENESIS
    assert all(e.prev_hash == p.hash for p, e in zip(entries, entries[1:], strict=False))

    by_kind: dict[str, list[AuditEntry]] = {}
    for entry in entries:
        by_kind.setdefault(entry.kind, []).append(entry)
    [started] = by_kind["run.started"]
    assert started.actor == submitter_id and started.data["agent"] == "support"
    calls = by_kind["model.call"]
    assert calls and all(c.data["model"] == "extractive-bm25" for c in calls)
    assert all(c.data["cost_usd"] == 0.0 and c.data["input_tokens"] > 0 for c in calls)
    [opened] = by_kind["review.opened"]
    [claimed] = by_kind["review.claimed"]
    assert claimed.actor == reviewer_id
    [decided] = by_kind["review.decided"]
    assert decided.actor == reviewer_id
    assert decided.data["status"] == "approved" and decided.data["comment"] == "fine"
    assert opened.seq < claimed.seq < decided.seq
    finished = entries[-1]
    assert finished.kind == "run.finished" and finished.data["status"] == "completed"
    assert len(finished.data["answer_sha256"]) == 64

    verified = await keel(secured.stack, "audit", "verify", run_id)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"ok: 1 run(s), {len(entries)} entries checked" in verified.stdout


async def test_a_tampered_row_is_found_by_keel_audit_verify(secured: Secured) -> None:
    run_id = await reviewed_run(secured)
    assert (await keel(secured.stack, "audit", "verify")).returncode == 0
    with sqlite3.connect(secured.stack.db_file) as db:
        db.execute(
            "UPDATE audit SET data = json_set(data, '$.comment', 'rubber-stamped') "
            "WHERE run_id = ? AND kind = 'review.decided'",
            (run_id,),
        )
        (seq,) = db.execute(
            "SELECT seq FROM audit WHERE run_id = ? AND kind = 'review.decided'", (run_id,)
        ).fetchone()
    broken = await keel(secured.stack, "audit", "verify", run_id)
    assert broken.returncode == 1
    assert f"BROKEN  run {run_id}, entry {seq}: content does not match its hash" in broken.stdout
    everything = await keel(secured.stack, "audit", "verify")
    assert everything.returncode == 1 and f"run {run_id}, entry {seq}" in everything.stdout

    with sqlite3.connect(secured.stack.db_file) as db:
        db.execute("DELETE FROM audit WHERE run_id = ? AND seq = 2", (run_id,))
    gap = await keel(secured.stack, "audit", "verify", run_id)
    assert gap.returncode == 1 and "entry 3: expected entry 2 here" in gap.stdout


async def test_an_executed_tool_is_recorded_with_its_arguments_hash(secured: Secured) -> None:
    question = "What is (12.5 * 4) + 3?"
    async with secured.client("submitter") as submitter:
        started = await submitter.post("/v1/runs", json={"agent": "assistant", "input": question})
        run_id = started.json()["run_id"]
        await wait_status(submitter, run_id, {"completed"})
        entries = (await submitter.get(f"/v1/runs/{run_id}/audit")).json()["entries"]
    [tool] = [e for e in entries if e["kind"] == "tool.executed"]
    assert tool["data"]["tool"] == "calculator" and tool["data"]["ok"] is True
    assert len(tool["data"]["arguments_sha256"]) == 64
    [finished] = [e for e in entries if e["kind"] == "run.finished"]
    assert finished["data"]["status"] == "completed" and finished["seq"] > tool["seq"]


async def test_a_cancelled_run_records_who_cancelled_it(secured: Secured) -> None:
    async with secured.client("submitter") as submitter:
        started = await submitter.post("/v1/runs", json={"agent": "support", "input": UNSURE})
        run_id = started.json()["run_id"]
        await wait_status(submitter, run_id, {"awaiting_review"})
        assert (await submitter.post(f"/v1/runs/{run_id}/cancel")).status_code == 202
        await wait_status(submitter, run_id, {"cancelled"})
        entries = (await submitter.get(f"/v1/runs/{run_id}/audit")).json()["entries"]
    last = {e["kind"]: e for e in entries[-3:]}  # the API and the worker write concurrently
    assert set(last) == {"run.cancel_requested", "review.decided", "run.finished"}, entries
    assert last["run.cancel_requested"]["actor"] == secured.keys["submitter"]["id"]
    closed = last["review.decided"]
    assert closed["data"]["status"] == "cancelled" and closed["actor"] is None
    assert last["run.finished"]["data"] == {"status": "cancelled", "cost_usd": 0.0}
