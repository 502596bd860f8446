"""Grading audit samples: a person says whether an answer sent without review was correct.

A grade is no decision of the run (the run has ended and the customer has the answer): it
is written to the audit's queue row, kept as a weighted label (`keel.labels.grade_label`)
and entered in the run's audit trail. An audit is graded once: the row changes from
`pending` to `graded` in one conditional update, so of two graders racing only one wins.
Who may grade (a reviewer, never on a run they submitted) is the API's to check.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.audit import AuditLog
from keel.errors import ReviewNotPending, UnknownReview, WrongReviewKind
from keel.labels import grade_label
from keel.schemas.reviews import Grade
from keel.tables import LabelRow, ReviewRow

__all__ = ["audit_row", "grade_audit"]


async def audit_row(session: AsyncSession, review_id: str) -> ReviewRow:
    """The audit `review_id`, pending or graded.

    Raises:
        UnknownReview: No review has the id.
        WrongReviewKind: The review is an escalation (it is decided, not graded).

    """
    row = await session.get(ReviewRow, review_id)
    if row is None:
        raise UnknownReview(f"no review {review_id!r}")
    if row.kind != "audit":
        raise WrongReviewKind(
            f"review {review_id!r} is an escalation: decide it "
            f"(POST /v1/reviews/{review_id}/decision); only audits are graded"
        )
    return row


async def grade_audit(
    session: AsyncSession,
    audit: AuditLog,
    review_id: str,
    grade: Grade,
    *,
    note: str | None,
    reviewer: str | None,
    reviewer_id: str | None,
    reviewer_key: str | None = None,
) -> ReviewRow:
    """Grade the pending audit `review_id`; its row, graded.

    The trail's entry names `reviewer_id` (the grading principal) as its actor, else
    `reviewer`, and keeps `reviewer_key`, the key it graded with.

    Raises:
        UnknownReview: No review has the id.
        WrongReviewKind: The review is an escalation.
        ReviewNotPending: The audit was graded already.

    """
    row = await audit_row(session, review_id)
    now = datetime.now(UTC)
    graded = await session.exec(
        update(ReviewRow)
        .where(col(ReviewRow.id) == review_id, col(ReviewRow.status) == "pending")
        .values(status="graded", grade=grade, comment=note, reviewer=reviewer, decided_at=now)
    )
    if graded.rowcount != 1:
        await session.rollback()
        raise ReviewNotPending(f"audit {review_id!r} was graded already")
    await session.commit()
    await session.refresh(row)
    label = grade_label(row)
    if await session.get(LabelRow, label.review_id) is None:
        session.add(label)
        await session.commit()
    data: dict[str, Any] = {
        "review_id": review_id,
        "grade": grade,
        "note": note,
        "sampling_rate": row.sampling_rate,
    }
    if reviewer_key is not None:
        data["reviewer_key"] = reviewer_key
    actor = reviewer_id or reviewer
    await audit.append(row.run_id, f"{review_id}:graded", "review.graded", actor, data)
    return row
