"""Reviews as the API shows them."""

from datetime import UTC, datetime

from keel.schemas.guards import GuardFinding
from keel.schemas.model import ToolCall
from keel.schemas.retrieval import Passage
from keel.schemas.reviews import Citation, Claim, ReviewView, Verification
from keel.schemas.scoring import Signals
from keel.settings import Settings
from keel.tables import ReviewRow

__all__ = ["active_claim", "review_view", "utc"]


def utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime (SQLite gives naive ones back)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def active_claim(row: ReviewRow, now: datetime) -> Claim | None:
    """The row's claim while it holds: pending, claimed, lease not yet expired."""
    if row.status != "pending" or row.claimed_by is None or row.claim_expires_at is None:
        return None
    expires = utc(row.claim_expires_at)
    return Claim(claimant=row.claimed_by, expires_at=expires) if expires > now else None


def review_view(row: ReviewRow, settings: Settings, now: datetime) -> ReviewView:
    """The row as `ReviewView`."""
    return ReviewView(
        id=row.id,
        run_id=row.run_id,
        agent=row.agent,
        kind=row.kind,
        queue=row.queue,
        status=row.status,
        reason=row.reason,
        node=row.node,
        triage=row.triage,
        question=row.question,
        proposed_answer=row.proposed_answer,
        citations=[Citation.model_validate(c) for c in row.citations],
        passages=[Passage.model_validate(p) for p in row.passages],
        findings=[GuardFinding.model_validate(f) for f in row.findings or []],
        verification=Verification.model_validate(row.verification) if row.verification else None,
        signals=Signals.model_validate(row.signals) if row.signals else None,
        confidence=row.confidence,
        threshold=row.threshold,
        cost_usd=row.cost_usd,
        tool_call=ToolCall.model_validate(row.tool_call) if row.tool_call else None,
        tool_parameters=row.tool_parameters,
        action_hash=row.action_hash,
        claim=active_claim(row, now),
        answer=row.answer,
        edited_citations=None
        if row.edited_citations is None
        else [Citation.model_validate(c) for c in row.edited_citations],
        arguments=row.arguments,
        comment=row.comment,
        reviewer=row.reviewer,
        created_at=utc(row.created_at),
        deadline=utc(row.deadline),
        deadline_path=row.deadline_path,
        decided_at=utc(row.decided_at) if row.decided_at else None,
        sampling_rate=row.sampling_rate,
        grade=row.grade,
        ui_url=settings.run_ui_url(row.run_id),
    )
