"""Reviews as the API shows them, and the refusals of the run's review Updates as problems."""

from datetime import UTC, datetime

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from api.problems import ErrorCode, ProblemError
from keel.schemas.guards import GuardFinding
from keel.schemas.model import ToolCall
from keel.schemas.retrieval import Passage
from keel.schemas.reviews import Citation, Claim, ReviewView
from keel.settings import Settings
from keel.tables import ReviewRow

__all__ = ["active_claim", "refusal", "review_view", "utc"]

_REFUSALS = {
    "ReviewNotPending": (409, ErrorCode.REVIEW_NOT_PENDING),
    "StaleAction": (409, ErrorCode.STALE_ACTION),
    "ClaimedByAnother": (409, ErrorCode.CLAIMED_BY_ANOTHER),
    "SelfApproval": (403, ErrorCode.SELF_APPROVAL),
    "InvalidEdit": (422, ErrorCode.INVALID_ARGUMENTS),
}
"""Update-validator failure types → HTTP status and problem code."""


def utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime (SQLite gives naive ones back)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def active_claim(row: ReviewRow, now: datetime) -> Claim | None:
    """The row's claim while it holds: pending, claimed, lease not yet expired."""
    if row.status != "pending" or row.claimed_by is None or row.claim_expires_at is None:
        return None
    expires = utc(row.claim_expires_at)
    return Claim(claimant=row.claimed_by, expires_at=expires) if expires > now else None


def refusal(err: WorkflowUpdateFailedError) -> ProblemError | None:
    """The problem a review Update's refusal answers with, if it is one."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in _REFUSALS:
        status, code = _REFUSALS[cause.type]
        return ProblemError(status, code, cause.message)
    return None


def review_view(row: ReviewRow, settings: Settings, now: datetime) -> ReviewView:
    """The row as `ReviewView`."""
    return ReviewView(
        id=row.id,
        run_id=row.run_id,
        agent=row.agent,
        queue=row.queue,
        status=row.status,
        reason=row.reason,
        node=row.node,
        question=row.question,
        proposed_answer=row.proposed_answer,
        citations=[Citation.model_validate(c) for c in row.citations],
        passages=[Passage.model_validate(p) for p in row.passages],
        findings=[GuardFinding.model_validate(f) for f in row.findings or []],
        confidence=row.confidence,
        threshold=row.threshold,
        cost_usd=row.cost_usd,
        tool_call=ToolCall.model_validate(row.tool_call) if row.tool_call else None,
        tool_parameters=row.tool_parameters,
        action_hash=row.action_hash,
        claim=active_claim(row, now),
        answer=row.answer,
        arguments=row.arguments,
        comment=row.comment,
        reviewer=row.reviewer,
        created_at=utc(row.created_at),
        deadline=utc(row.deadline),
        deadline_path=row.deadline_path,
        decided_at=utc(row.decided_at) if row.decided_at else None,
        ui_url=settings.run_ui_url(row.run_id),
    )
