"""The hash-chained audit trail on a secured stack: what a reviewed run records, and
tampering detected, by the chain and by the anchor Temporal's history of the run holds."""

import asyncio
import json
import sqlite3
from datetime import datetime
from pathlib import Path

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from keel.audit import GENESIS, entry_hash, verify_trail
from keel.audit_checkpoint import Checkpoints
from keel.schemas.audit import AuditEntry, AuditHead
from keel.settings import Settings
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

    # Temporal's history of the run anchors its last entry; the API verifies against it.
    assert trail["verification"] == {
        "run_id": run_id,
        "verdict": "ok",
        "entries": len(entries),
        "anchor": {"seq": finished.seq, "hash": finished.hash},
        "checkpoint": {"seq": finished.seq, "hash": finished.hash},
        "detail": f"anchored at entry {finished.seq}; checkpoint at entry {finished.seq}",
    }
    verified = await keel(secured.stack, "audit", "verify", run_id)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert (
        f"ok          {run_id}  {len(entries)} entries; anchored at entry {finished.seq}; "
        f"checkpoint at entry {finished.seq}\n"
    ) in verified.stdout
    assert f"1 run(s), {len(entries)} entries checked: 1 ok" in verified.stdout


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
    assert f"BROKEN      {run_id}" in broken.stdout
    assert f"entry {seq}: content does not match its hash" in broken.stdout
    everything = await keel(secured.stack, "audit", "verify")
    assert everything.returncode == 1
    assert f"BROKEN      {run_id}" in everything.stdout and "1 broken" in everything.stdout

    with sqlite3.connect(secured.stack.db_file) as db:
        db.execute("DELETE FROM audit WHERE run_id = ? AND seq = 2", (run_id,))
    gap = await keel(secured.stack, "audit", "verify", run_id)
    assert gap.returncode == 1 and "entry 3: expected entry 2 here" in gap.stdout


async def test_deleting_a_finished_runs_newest_entries_is_found_as_truncation(
    secured: Secured,
) -> None:
    run_id = await reviewed_run(secured)
    with sqlite3.connect(secured.stack.db_file) as db:
        (last,) = db.execute("SELECT max(seq) FROM audit WHERE run_id = ?", (run_id,)).fetchone()
        db.execute("DELETE FROM audit WHERE run_id = ? AND seq >= ?", (run_id, last - 1))
    # What is left is a valid, shorter chain: only the anchor tells.
    async with secured.client("submitter") as submitter:
        trail = (await submitter.get(f"/v1/runs/{run_id}/audit")).json()
    assert verify_trail([AuditEntry.model_validate(e) for e in trail["entries"]]) is None
    assert trail["verification"]["verdict"] == "truncated"
    truncated = await keel(secured.stack, "audit", "verify", run_id)
    assert truncated.returncode == 1
    assert (
        f"TRUNCATED   {run_id}  {last - 2} entries; entry {last} is the one Temporal anchored "
        f"as the run ended; the trail ends at {last - 2}"
    ) in truncated.stdout

    # Every entry gone: the run is still verified, from Temporal's list of the stack's runs.
    with sqlite3.connect(secured.stack.db_file) as db:
        db.execute("DELETE FROM audit WHERE run_id = ?", (run_id,))
    everything = await keel(secured.stack, "--json", "audit", "verify")
    assert everything.returncode == 1
    [verdict] = [v for v in json.loads(everything.stdout) if v["run_id"] == run_id]
    assert verdict["verdict"] == "truncated" and verdict["entries"] == 0


async def test_rewriting_a_decider_and_every_hash_is_found_as_rechaining(
    secured: Secured,
) -> None:
    run_id = await reviewed_run(secured)
    other = secured.keys["operator"]["id"]
    with sqlite3.connect(secured.stack.db_file) as db:
        db.execute(
            "UPDATE audit SET actor = ? WHERE run_id = ? AND kind = 'review.decided'",
            (other, run_id),
        )
    _rechain(secured.stack.db_file, run_id)
    async with secured.client("submitter") as submitter:
        trail = (await submitter.get(f"/v1/runs/{run_id}/audit")).json()
    entries = [AuditEntry.model_validate(e) for e in trail["entries"]]
    assert verify_trail(entries) is None  # a chain that holds, with another decider
    assert [e.actor for e in entries if e.kind == "review.decided"] == [other]
    assert trail["verification"]["verdict"] == "rechained"
    rechained = await keel(secured.stack, "audit", "verify", run_id)
    assert rechained.returncode == 1
    assert f"RECHAINED   {run_id}  {len(entries)} entries; entry {len(entries)} is not " in (
        rechained.stdout
    )


async def test_a_run_temporal_lost_is_still_checked_and_one_with_no_record_is_unanchored(
    secured: Secured, temporal_client: Client
) -> None:
    # Temporal removes a closed run after its namespace's retention period; its signed
    # checkpoint is still there.
    forgotten = await reviewed_run(secured)
    await temporal_client.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(
            namespace=temporal_client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=forgotten),
        )
    )
    await _gone(temporal_client, forgotten)
    verified = await keel(secured.stack, "audit", "verify", forgotten)
    assert verified.returncode == 0, verified.stdout
    assert f"ok          {forgotten}" in verified.stdout
    assert "Temporal has no such run (past the namespace's retention?); checkpoint at entry" in (
        verified.stdout
    )
    _rechain(secured.stack.db_file, forgotten, "UPDATE audit SET actor = NULL")
    rechained = await keel(secured.stack, "audit", "verify", forgotten)
    assert rechained.returncode == 1
    assert f"RECHAINED   {forgotten}" in rechained.stdout
    assert "is not the one the signed checkpoint holds" in rechained.stdout

    # A checkpoint made without Keel's key (over the re-chained head) is found as forged.
    checkpoints = Checkpoints.from_settings(Settings(data_dir=secured.stack.data_dir))
    found = checkpoints.read(forgotten)
    assert found is not None
    with sqlite3.connect(secured.stack.db_file) as db:
        seq, digest = db.execute(
            "SELECT seq, hash FROM audit WHERE run_id = ? ORDER BY seq DESC LIMIT 1", (forgotten,)
        ).fetchone()
    head = AuditHead(seq=seq, hash=digest)
    forged = Checkpoints(b"not keel's key, 32 bytes or more", checkpoints.directory)
    _checkpoint_file(checkpoints, forgotten).write_text(
        forged.sign(forgotten, head).model_dump_json()
    )
    verified = await keel(secured.stack, "audit", "verify", forgotten)
    assert verified.returncode == 1
    assert f"FORGED      {forgotten}" in verified.stdout

    async with secured.client("submitter") as submitter:
        started = await submitter.post("/v1/runs", json={"agent": "support", "input": UNSURE})
        old = started.json()["run_id"]
        await wait_status(submitter, old, {"awaiting_review"})
    # Terminated, the run ends with no `run.finished` entry and no anchor; without its
    # checkpoint too, it is as a run from before anchors and checkpoints.
    await temporal_client.get_workflow_handle(old).terminate(reason="test")
    _checkpoint_file(checkpoints, old).unlink()
    verified = await keel(secured.stack, "audit", "verify", old)
    assert verified.returncode == 0, verified.stdout
    assert f"unanchored  {old}" in verified.stdout
    assert (
        "ended without an anchor (terminated, or started before anchors); no checkpoint"
    ) in verified.stdout


def _checkpoint_file(checkpoints: Checkpoints, run_id: str) -> Path:
    [path] = [
        path
        for path in checkpoints.directory.glob("*.json")
        if json.loads(path.read_text())["run_id"] == run_id
    ]
    return path


async def _gone(client: Client, run_id: str) -> None:
    """Wait until Temporal has deleted the run (a deletion completes in the background)."""
    while True:
        try:
            await client.get_workflow_handle(run_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return
            raise
        await asyncio.sleep(0.1)


def _rechain(db_file: Path, run_id: str, change: str | None = None) -> None:
    """Change a run's entries (`change`, an UPDATE of table `audit`, limited to the run), then
    recompute every hash of its trail, as a writer of the database could."""
    with sqlite3.connect(db_file) as db:
        if change is not None:
            db.execute(f"{change} WHERE run_id = ?", (run_id,))
        rows = db.execute(
            "SELECT seq, kind, actor, data, at FROM audit WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ).fetchall()
        prev_hash = GENESIS
        for seq, kind, actor, data, at in rows:
            fields = {"seq": seq, "run_id": run_id, "kind": kind, "actor": actor}
            digest = entry_hash(
                **fields, data=json.loads(data), at=datetime.fromisoformat(at), prev_hash=prev_hash
            )
            db.execute(
                "UPDATE audit SET prev_hash = ?, hash = ? WHERE run_id = ? AND seq = ?",
                (prev_hash, digest, run_id, seq),
            )
            prev_hash = digest


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
    verified = await keel(secured.stack, "audit", "verify", run_id)
    assert verified.returncode == 0, verified.stdout
    assert f"anchored at entry {last['run.finished']['seq']}" in verified.stdout
