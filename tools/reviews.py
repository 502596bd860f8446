"""Review-queue activities: the workflow's writes to the `reviews` table.

Both are idempotent on the review id (workflow id + review number), so a retried
activity never writes twice.
"""

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from keel.schemas.reviews import CLOSE_REVIEW, OPEN_REVIEW, CloseReviewInput, PendingReview
from keel.tables import ReviewRow

__all__ = ["ReviewQueue"]


class ReviewQueue:
    """Writes reviews into the SQL queue."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name=OPEN_REVIEW)
    async def open(self, review: PendingReview) -> None:
        """Add a pending review to the queue, unless a retry already did."""
        async with self._sessions() as session:
            if await session.get(ReviewRow, review.review_id) is not None:
                return
            session.add(
                ReviewRow(
                    id=review.review_id,
                    run_id=review.run_id,
                    agent=review.agent,
                    status="pending",
                    reason=review.reason,
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
                    created_at=review.opened_at,
                    deadline=review.deadline,
                )
            )
            await session.commit()

    @activity.defn(name=CLOSE_REVIEW)
    async def close(self, decision: CloseReviewInput) -> None:
        """Record the decision on the review's row."""
        async with self._sessions() as session:
            row = await session.get(ReviewRow, decision.review_id)
            if row is None:
                # Open always runs first in the same workflow; a missing row is a bug.
                raise LookupError(f"review {decision.review_id} is not in the queue")
            row.status = decision.status
            row.answer = decision.answer
            row.arguments = decision.arguments
            row.comment = decision.comment
            row.reviewer = decision.reviewer
            row.decided_at = decision.decided_at
            session.add(row)
            await session.commit()
