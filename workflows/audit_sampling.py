"""Audit sampling: a share of the answers sent without review is graded after the fact.

Reviewer verdicts only cover runs that escalated, so a threshold learnt from them never
sees the answers it let through. At its end, a run that sent an answer without review is
sampled with probability `RunPolicy.audit_rate`; a sampled answer also lands in the audit
queue (activity `review.open_audit`), where a person grades it later. Nothing waits for
the grade: the run has completed and the customer has the answer.

The draw is a hash of the workflow id, uniform on [0, 1): the same run always draws the
same, on replay and across continue-as-new, and the draw knows nothing of the answer.
Runs recorded before audit sampling existed take the old path (`workflow.patched`).
"""

import hashlib
from datetime import timedelta

from pydantic import JsonValue
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.schemas.policy import AUDIT_QUEUE, RunPolicy
    from keel.schemas.reviews import OPEN_AUDIT, AuditSample
    from keel.schemas.runs import Outcome
    from workflows import metrics
    from workflows.activity_options import REVIEW_QUEUE_WRITE_OPTIONS
    from workflows.policy import queue_spec

__all__ = ["AUDIT_PATCH", "audit_draw", "sample_for_audit"]

AUDIT_PATCH = "keel.audit-sampling"
"""The patch id that marks the runs which sample their answers for audit."""


def audit_draw(run_id: str) -> float:
    """The run's draw, uniform on [0, 1): sampled when it is below the audit rate."""
    digest = hashlib.sha256(f"keel.audit:{run_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


async def sample_for_audit(
    agent: str, run_input: dict[str, JsonValue], policy: RunPolicy, outcome: Outcome
) -> bool:
    """Put an answer sent without review in the audit queue, if the run is drawn.

    Returns:
        Whether it was sampled.
    """
    rate = policy.audit_rate
    if outcome.reviewed or outcome.answer is None or rate <= 0:
        return False
    info = workflow.info()
    if audit_draw(info.workflow_id) >= rate or not workflow.patched(AUDIT_PATCH):
        return False
    queue = policy.reason_queues.get("audit", AUDIT_QUEUE)
    opened_at = workflow.now()
    sla_s = queue_spec(policy, queue).sla_s or 7 * 24 * 3600
    sample = AuditSample(
        review_id=f"{info.workflow_id}.audit",
        run_id=info.workflow_id,
        agent=agent,
        input=run_input,
        answer=outcome.answer,
        citations=outcome.citations,
        confidence=outcome.confidence,
        signals=outcome.signals,
        threshold=policy.threshold,
        sampling_rate=rate,
        queue=queue,
        opened_at=opened_at,
        deadline=opened_at + timedelta(seconds=sla_s),
    )
    # A local activity: sampling costs the run no extra round trip to the server.
    await workflow.execute_local_activity(
        OPEN_AUDIT,
        sample,
        **REVIEW_QUEUE_WRITE_OPTIONS.for_local_activity(summary=f"audit sample (p={rate:g})"),
    )
    metrics.audit_sampled(agent)
    return True
