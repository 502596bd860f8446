"""Audit anchors: each run's chain head, kept outside Keel's database to check trails against.

A hash chain alone proves the order and content of the entries it holds, not how many there
were: deleting a run's newest entries, or rewriting a run and recomputing every hash, leaves
a valid chain. Two records outside the database say where a run's chain stood:

- **Temporal's anchor.** As a run ends, `AgentWorkflow` appends its `run.finished` entry
  through the `audit.append` local activity, whose result is that entry's place
  (`AuditHead`: seq and hash), and records it in the run's memo (`AUDIT_ANCHOR`). Both are
  events of the run's history, which a writer of Keel's database cannot rewrite. It covers
  the entries up to the run's end, while Temporal keeps the run.
- **The signed checkpoint** (`keel.audit_checkpoint`): the run's newest entry, signed with a
  key the database does not hold, in a file outside it. It also covers entries appended
  after the run ended (a grade, a late cancel request), and runs Temporal no longer keeps.

`verify_run` finds, in this order: a link that does not hold (`broken`); a checkpoint whose
signature does not hold (`forged`); a trail that ends before an anchored or checkpointed
entry (`truncated`); such an entry whose hash differs (`rechained`); neither record to
compare with (`unanchored`: runs from before both, or whose records are gone).
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus

from keel.audit import read_trail, verify_trail
from keel.audit_checkpoint import Checkpoints
from keel.run_client import RunClient
from keel.schemas.audit import AUDIT_ANCHOR, AuditEntry, AuditHead, AuditVerdict, Verdict
from keel.schemas.runs import AGENT_WORKFLOW
from keel.tables import AuditRow

__all__ = [
    "Anchor",
    "Checkpoint",
    "anchor_of",
    "read_anchor",
    "read_checkpoint",
    "verify_audit",
    "verify_run",
]

_CONCURRENCY = 16


@dataclass(frozen=True)
class Anchor:
    """A run's anchor in Temporal, or why it has none."""

    head: AuditHead | None
    missing: str = ""


async def read_anchor(runs: RunClient, run_id: str) -> Anchor:
    """The anchor Temporal's history of `run_id` holds (its latest run, after continue-as-new)."""
    return await anchor_of(await runs.describe(run_id))


async def anchor_of(description: WorkflowExecutionDescription | None) -> Anchor:
    """The anchor in a run's description (`RunClient.describe`; None: no such run)."""
    if description is None:
        return Anchor(None, "Temporal has no such run (past the namespace's retention?)")
    if description.status == WorkflowExecutionStatus.RUNNING:
        return Anchor(None, "still running: anchored when it ends")
    head = (await description.memo()).get(AUDIT_ANCHOR)
    if head is None:
        return Anchor(None, "ended without an anchor (terminated, or started before anchors)")
    return Anchor(AuditHead.model_validate(head))


@dataclass(frozen=True)
class Checkpoint:
    """A run's signed checkpoint: the entry it holds, and whether Keel's key signed it."""

    head: AuditHead
    signed: bool


def read_checkpoint(checkpoints: Checkpoints, run_id: str) -> Checkpoint | None:
    """`run_id`'s checkpoint (blocking file I/O); None when it has none."""
    found = checkpoints.read(run_id)
    if found is None:
        return None
    signed = found.run_id == run_id and checkpoints.signed(found)  # not another run's
    return Checkpoint(AuditHead(seq=found.seq, hash=found.hash), signed)


def verify_run(
    run_id: str, trail: Sequence[AuditEntry], anchor: Anchor, checkpoint: Checkpoint | None
) -> AuditVerdict:
    """Check `trail` (a run's entries in chain order) as a chain, then against its records."""
    entries = len(trail)
    marks = [(anchor.head, "Temporal anchored as the run ended")]
    if checkpoint is not None:
        marks.append((checkpoint.head, "the signed checkpoint holds"))

    def verdict(kind: Verdict, detail: str) -> AuditVerdict:
        return AuditVerdict(
            run_id=run_id,
            verdict=kind,
            entries=entries,
            anchor=anchor.head,
            checkpoint=checkpoint.head if checkpoint is not None else None,
            detail=detail,
        )

    broken = verify_trail(list(trail))
    if broken is not None:
        return verdict("broken", f"entry {broken.seq}: {broken.reason}")
    if checkpoint is not None and not checkpoint.signed:
        return verdict("forged", "its checkpoint was not signed with Keel's audit key")
    for head, holder in marks:
        if head is None:
            continue
        if entries < head.seq:
            return verdict(
                "truncated", f"entry {head.seq} is the one {holder}; the trail ends at {entries}"
            )
        if trail[head.seq - 1].hash != head.hash:  # a valid chain: entry n is at n - 1
            return verdict(
                "rechained",
                f"entry {head.seq} is not the one {holder} "
                f"(hash {trail[head.seq - 1].hash[:12]}…, expected {head.hash[:12]}…)",
            )
    heads = [head for head, _ in marks if head is not None]
    if not heads:
        return verdict("unanchored", f"{anchor.missing}; no checkpoint")
    covered = [f"anchored at entry {anchor.head.seq}" if anchor.head else anchor.missing]
    if checkpoint is not None:
        covered.append(f"checkpoint at entry {checkpoint.head.seq}")
    later = entries - max(head.seq for head in heads)
    if later:
        covered.append(f"{later} later entries not covered")
    return verdict("ok", "; ".join(covered))


async def verify_audit(
    session: AsyncSession,
    runs: RunClient,
    checkpoints: Checkpoints,
    task_queue: str,
    run_id: str | None = None,
) -> list[AuditVerdict]:
    """Verify one run's trail, or every run's.

    Every run is each run Keel's database has entries of, each run with a checkpoint, and
    each run of `task_queue` that Temporal has (so a run whose entries were all deleted is
    verified too).
    """
    if run_id is not None:
        run_ids = [run_id]
    else:
        stored = await session.exec(select(AuditRow.run_id).distinct())
        signed = await asyncio.to_thread(lambda: set(checkpoints.run_ids()))
        run_ids = sorted({*stored, *signed, *await _temporal_runs(runs, task_queue)})
    limit = asyncio.Semaphore(_CONCURRENCY)

    async def anchor(run: str) -> Anchor:
        async with limit:
            return await read_anchor(runs, run)

    anchors = await asyncio.gather(*(anchor(run) for run in run_ids))
    signed = await asyncio.to_thread(lambda: [read_checkpoint(checkpoints, r) for r in run_ids])
    # One session reads every trail: a session is not for concurrent use.
    return [
        verify_run(run, await read_trail(session, run), found, checkpoint)
        for run, found, checkpoint in zip(run_ids, anchors, signed, strict=True)
    ]


async def _temporal_runs(runs: RunClient, task_queue: str) -> set[str]:
    query = f"WorkflowType = '{AGENT_WORKFLOW}' AND TaskQueue = '{task_queue}'"
    return {execution.id async for execution in runs.client.list_workflows(query)}
