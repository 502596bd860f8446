"""Audit anchors: each run's chain head, kept outside Keel's database to check trails against.

A hash chain alone proves the order and content of the entries it holds, not how many there
were: deleting a run's newest entries, or rewriting a run and recomputing every hash, leaves
a valid chain. So as a run ends, `AgentWorkflow` appends its `run.finished` entry through the
`audit.append` local activity, whose result is that entry's place (`AuditHead`: seq and
hash), and records it in the run's memo (`AUDIT_ANCHOR`). Both the activity's result and the
memo are events of the run's history in Temporal, which a writer of Keel's database cannot
rewrite.

`verify_run` finds, in this order: a link that does not hold (`broken`); a trail that ends
before its anchored entry (`truncated`); an anchored entry whose hash differs (`rechained`);
no anchor to compare with (`unanchored`: the run is still running, ended without one, being
terminated or older than anchors, or Temporal no longer has it). Entries appended after the
run ended (a grade, a late cancel request) are chained to the anchored entry but not covered
by the anchor.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import WorkflowExecutionStatus

from keel.audit import read_trail, verify_trail
from keel.run_client import RunClient
from keel.schemas.audit import AUDIT_ANCHOR, AuditEntry, AuditHead, AuditVerdict, Verdict
from keel.schemas.runs import AGENT_WORKFLOW
from keel.tables import AuditRow

__all__ = ["Anchor", "read_anchor", "verify_audit", "verify_run"]

_CONCURRENCY = 16


@dataclass(frozen=True)
class Anchor:
    """A run's anchor in Temporal, or why it has none."""

    head: AuditHead | None
    missing: str = ""


async def read_anchor(runs: RunClient, run_id: str) -> Anchor:
    """The anchor Temporal's history of `run_id` holds (its latest run, after continue-as-new)."""
    description = await runs.describe(run_id)
    if description is None:
        return Anchor(None, "Temporal has no such run (past the namespace's retention?)")
    if description.status == WorkflowExecutionStatus.RUNNING:
        return Anchor(None, "still running: anchored when it ends")
    head = (await description.memo()).get(AUDIT_ANCHOR)
    if head is None:
        return Anchor(None, "ended without an anchor (terminated, or started before anchors)")
    return Anchor(AuditHead.model_validate(head))


def verify_run(run_id: str, trail: Sequence[AuditEntry], anchor: Anchor) -> AuditVerdict:
    """Check `trail` (a run's entries in chain order) as a chain, then against `anchor`."""
    entries, head = len(trail), anchor.head

    def verdict(kind: Verdict, detail: str) -> AuditVerdict:
        return AuditVerdict(
            run_id=run_id, verdict=kind, entries=entries, anchor=head, detail=detail
        )

    broken = verify_trail(list(trail))
    if broken is not None:
        return verdict("broken", f"entry {broken.seq}: {broken.reason}")
    if head is None:
        return verdict("unanchored", anchor.missing)
    if entries < head.seq:
        return verdict(
            "truncated",
            f"Temporal anchored entry {head.seq} as the run ended; the trail ends at {entries}",
        )
    if trail[head.seq - 1].hash != head.hash:  # a valid chain: entry n is at n - 1
        return verdict(
            "rechained",
            f"entry {head.seq} is not the one Temporal anchored as the run ended "
            f"(hash {trail[head.seq - 1].hash[:12]}…, anchored {head.hash[:12]}…)",
        )
    later = entries - head.seq
    return verdict(
        "ok",
        f"anchored at entry {head.seq}"
        + (f"; {later} later entries chained, not anchored" if later else ""),
    )


async def verify_audit(
    session: AsyncSession, runs: RunClient, task_queue: str, run_id: str | None = None
) -> list[AuditVerdict]:
    """Verify one run's trail, or every run's.

    Every run is each run Keel's database has entries of, and each run of `task_queue` that
    Temporal has (so a run whose entries were all deleted is verified too).
    """
    if run_id is not None:
        run_ids = [run_id]
    else:
        stored = await session.exec(select(AuditRow.run_id).distinct())
        run_ids = sorted({*stored, *await _temporal_runs(runs, task_queue)})
    limit = asyncio.Semaphore(_CONCURRENCY)

    async def anchor(run: str) -> Anchor:
        async with limit:
            return await read_anchor(runs, run)

    anchors = await asyncio.gather(*(anchor(run) for run in run_ids))
    # One session reads every trail: a session is not for concurrent use.
    return [
        verify_run(run, await read_trail(session, run), found)
        for run, found in zip(run_ids, anchors, strict=True)
    ]


async def _temporal_runs(runs: RunClient, task_queue: str) -> set[str]:
    query = f"WorkflowType = '{AGENT_WORKFLOW}' AND TaskQueue = '{task_queue}'"
    return {execution.id async for execution in runs.client.list_workflows(query)}
