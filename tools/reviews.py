"""Review-queue activities: the workflow's writes to the `reviews` table.

Besides escalations, `open_audit` writes an audit sample: an answer the run sent without
review, put in the audit queue to be graded after the fact (`keel.grading`).

Each is idempotent on the review id (workflow id + review number): a retried activity
never writes twice, and a claim record carries a version so an older one that arrives late
never overwrites a newer one. Each write is also an entry of the run's audit trail (review
opened, claimed or released, moved, decided), keyed so that a retry finds its entry.
"""

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from keel.agents import agent_catalog
from keel.audit import AuditLog
from keel.labels import record_label
from keel.schemas.reviews import (
    CLAIM_REVIEW,
    CLOSE_REVIEW,
    MOVE_REVIEW,
    OPEN_AUDIT,
    OPEN_REVIEW,
    AuditSample,
    ClaimRecord,
    CloseReviewInput,
    MoveReviewInput,
    PendingReview,
    ReviewRequest,
    action_hash,
)
from keel.tables import ReviewRow

__all__ = ["ReviewQueue"]


class ReviewQueue:
    """Writes reviews into the SQL queue."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], audit: AuditLog) -> None:
        self._sessions = sessions
        # Audit writes use sessions of their own: a lost race rolls back the audit write,
        # never the row's.
        self._audit = audit.append

    @activity.defn(name=OPEN_REVIEW)
    async def open(self, review: PendingReview) -> None:
        """Add a pending review to the queue, unless a retry already did."""
        async with self._sessions() as session:
            if await session.get(ReviewRow, review.review_id) is not None:
                await self._audit_opened(review)
                return
            session.add(
                ReviewRow(
                    id=review.review_id,
                    run_id=review.run_id,
                    agent=review.agent,
                    queue=review.queue,
                    status="pending",
                    reason=review.reason,
                    node=review.node,
                    triage=review.triage,
                    question=review.question,
                    proposed_answer=review.proposed_answer,
                    citations=[c.model_dump() for c in review.citations],
                    passages=[p.model_dump() for p in review.passages],
                    confidence=review.confidence,
                    threshold=review.threshold,
                    cost_usd=review.cost_usd,
                    tool_call=review.tool_call.model_dump(mode="json")
                    if review.tool_call
                    else None,
                    tool_parameters=review.tool_parameters,
                    findings=[f.model_dump() for f in review.findings],
                    verification=review.verification.model_dump() if review.verification else None,
                    signals=review.signals.model_dump() if review.signals else None,
                    action_hash=review.action_hash,
                    created_at=review.opened_at,
                    deadline=review.deadline,
                )
            )
            await session.commit()
        await self._audit_opened(review)

    async def _audit_opened(self, review: PendingReview) -> None:
        data = {
            "review_id": review.review_id,
            "queue": review.queue,
            "reason": review.reason,
            "confidence": review.confidence,
            "action_hash": review.action_hash,
        }
        key = f"{review.review_id}:opened"
        await self._audit(review.run_id, key, "review.opened", None, data)

    @activity.defn(name=OPEN_AUDIT)
    async def open_audit(self, sample: AuditSample) -> None:
        """Add an answer sent without review to the audit queue, unless a retry already did."""
        question = _question(sample.agent, sample.input)
        async with self._sessions() as session:
            if await session.get(ReviewRow, sample.review_id) is None:
                request = ReviewRequest(
                    reason="audit", question=question, proposed_answer=sample.answer
                )
                session.add(
                    ReviewRow(
                        id=sample.review_id,
                        run_id=sample.run_id,
                        agent=sample.agent,
                        kind="audit",
                        queue=sample.queue,
                        status="pending",
                        reason="audit",
                        question=question,
                        proposed_answer=sample.answer,
                        citations=[c.model_dump() for c in sample.citations],
                        passages=[],
                        confidence=sample.confidence,
                        threshold=sample.threshold,
                        sampling_rate=sample.sampling_rate,
                        signals=sample.signals.model_dump() if sample.signals else None,
                        action_hash=action_hash(sample.review_id, request),
                        created_at=sample.opened_at,
                        deadline=sample.deadline,
                    )
                )
                await session.commit()
        data = {
            "review_id": sample.review_id,
            "queue": sample.queue,
            "sampling_rate": sample.sampling_rate,
            "confidence": sample.confidence,
            # As the run's `run.finished` entry hashes it: the same answer, the same digest.
            "answer_sha256": hashlib.sha256(sample.answer.encode()).hexdigest(),
        }
        key = f"{sample.review_id}:sampled"
        await self._audit(sample.run_id, key, "audit.sampled", None, data)

    @activity.defn(name=CLOSE_REVIEW)
    async def close(self, decision: CloseReviewInput) -> None:
        """Record the decision on the review's row."""
        async with self._sessions() as session:
            row = await _row(session, decision.review_id)
            row.status = decision.status
            row.answer = decision.answer
            row.arguments = decision.arguments
            if decision.citations is not None:
                row.edited_citations = [c.model_dump() for c in decision.citations]
            row.comment = decision.comment
            row.reviewer = decision.reviewer
            row.decided_at = decision.decided_at
            row.deadline_path = decision.deadline_path
            row.claimed_by, row.claim_expires_at = None, None
            session.add(row)
            await session.commit()
            await record_label(session, row)
            data: dict[str, Any] = {
                "review_id": decision.review_id,
                "status": decision.status,
                "reviewer": decision.reviewer,
                "comment": decision.comment,
                "deadline_path": decision.deadline_path,
            }
            if decision.reviewer_key is not None:
                data["reviewer_key"] = decision.reviewer_key
            if decision.answer is not None:
                data["answer_sha256"] = _sha256(decision.answer)
            if decision.arguments is not None:
                data["arguments_sha256"] = _sha256(decision.arguments)
            if decision.citations is not None:
                data["citations"] = [c.passage_id for c in decision.citations]
            actor = decision.reviewer_id or decision.reviewer
            key = f"{decision.review_id}:decided"
            await self._audit(row.run_id, key, "review.decided", actor, data)

    @activity.defn(name=CLAIM_REVIEW)
    async def claim(self, record: ClaimRecord) -> None:
        """Show who holds the review, until when (or that nobody does)."""
        async with self._sessions() as session:
            row = await _row(session, record.review_id)
            # The workflow accepted this claim (or release): a fact, whatever the row shows.
            data = {"review_id": record.review_id, "expires_at": _iso(record.expires_at)}
            if record.key is not None:
                data["key"] = record.key
            await self._audit(
                row.run_id,
                f"{record.review_id}:claim-{record.version}",
                "review.claimed" if record.claimant else "review.released",
                record.claimant,
                data,
            )
            if row.claim_version >= record.version or row.status != "pending":
                return
            row.claimed_by, row.claim_expires_at = record.claimant, record.expires_at
            row.claim_version = record.version
            session.add(row)
            await session.commit()

    @activity.defn(name=MOVE_REVIEW)
    async def move(self, move: MoveReviewInput) -> None:
        """Move a review past its deadline to another queue, unclaimed, with a new deadline."""
        async with self._sessions() as session:
            row = await _row(session, move.review_id)
            await self._audit(
                row.run_id,
                f"{move.review_id}:move-{move.version}",
                "review.moved",
                None,
                {"review_id": move.review_id, "queue": move.queue},
            )
            row.queue, row.deadline, row.deadline_path = move.queue, move.deadline, "escalate"
            row.claimed_by, row.claim_expires_at = None, None
            row.claim_version = max(row.claim_version, move.version)
            session.add(row)
            await session.commit()


async def _row(session: AsyncSession, review_id: str) -> ReviewRow:
    row = await session.get(ReviewRow, review_id)
    if row is None:
        # Open always runs first in the same workflow; a missing row is a bug.
        raise LookupError(f"review {review_id} is not in the queue")
    return row


def _question(agent: str, run_input: dict[str, Any]) -> str:
    """What the run was asked: its agent's text field, else its whole input as JSON."""
    spec = agent_catalog().get(agent)
    text = run_input.get(spec.text_field) if spec is not None else None
    return text if isinstance(text, str) else json.dumps(run_input, ensure_ascii=False)


def _sha256(value: object) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
