"""`/v1/reviews`: the human-review queues, claims, and decisions that resume runs.

A decision names the `action_hash` of the action it approves; a claim gives a reviewer a
lease on a review. The workflow is the judge of both (its Update validators refuse a
stale, decided or foreign-claimed decision before it reaches history); the API checks the
queue row first only to answer sooner, with the same problem types.

Audits (`kind=audit`) are answers already sent without review, sampled to be graded: a
grade (`POST /v1/reviews/{id}/grade`) is written to the database and the run's audit
trail and becomes a label (`keel.grading`); it is no Update, since the run has ended.
"""

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BeforeValidator
from sqlmodel import col, or_, select
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal, PrincipalDep, refuse_own_run, require
from api.deps import AuditDep, RunClientDep, SessionDep, SettingsDep
from api.quality import agent_quality
from api.review_views import active_claim, review_view
from keel.errors import (
    ClaimedByAnother,
    InvalidEdit,
    InvalidRequest,
    KeelError,
    ReviewNotPending,
    StaleAction,
    UnknownReview,
    WrongReviewKind,
)
from keel.grading import audit_row, grade_audit
from keel.review_edits import edit_problem
from keel.schemas.policy import ReviewReason
from keel.schemas.reviews import (
    ClaimInput,
    ClaimRequest,
    DecisionInput,
    DecisionRequest,
    GradeRequest,
    ReleaseInput,
    ReviewDecision,
    ReviewKind,
    ReviewList,
    ReviewStatus,
    ReviewView,
)
from keel.tables import ReviewRow

__all__ = ["claim", "decide", "get_review", "grade", "list_reviews", "release", "router"]

_LONGEST_AGE = timedelta(days=100 * 366)
"""Ages beyond this cannot be subtracted from now (datetime's range)."""


def _seconds(value: Any) -> Any:
    """A number of seconds as a duration; anything else is left to the ISO 8601 parser."""
    try:
        return timedelta(seconds=float(value))
    except (TypeError, ValueError, OverflowError):
        return value


_Duration = Annotated[timedelta, BeforeValidator(_seconds)]


def _age(bound: str) -> Any:
    """A `Query` for a review's age: a duration from zero to `_LONGEST_AGE`."""
    # FastAPI types the bounds as floats; pydantic compares durations with them just as well.
    return Query(
        ge=timedelta(0),  # pyright: ignore[reportArgumentType]
        le=_LONGEST_AGE,  # pyright: ignore[reportArgumentType]
        description=f"Opened {bound} this long ago (s or ISO 8601).",
    )


_EDIT_KINDS: dict[str, type[KeelError]] = {
    "wrong_replacement": InvalidRequest,
    "invalid_arguments": InvalidEdit,
    "unknown_citation": InvalidRequest,
}

router = APIRouter(
    prefix="/v1/reviews", tags=["reviews"], dependencies=[require("reviewer", "operator")]
)


@router.get("")
async def list_reviews(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    queue: str | None = None,
    status: ReviewStatus | None = None,
    reason: ReviewReason | None = None,
    agent: str | None = None,
    run_id: str | None = None,
    kind: Annotated[
        ReviewKind,
        Query(
            description="escalation (default): runs waiting on a person; audit: answers "
            "already sent without review, sampled to be graded."
        ),
    ] = "escalation",
    claimed: Annotated[
        bool | None, Query(description="true: under an unexpired claim; false: free.")
    ] = None,
    older_than: Annotated[_Duration | None, _age("at least")] = None,
    newer_than: Annotated[_Duration | None, _age("at most")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,  # SQL integers are 64-bit
) -> ReviewList:
    """Reviews, oldest first (the order a queue is worked); `next` is the next page."""
    now = datetime.now(UTC)
    query = select(ReviewRow).order_by(col(ReviewRow.created_at), col(ReviewRow.id))
    for column, value in (
        (ReviewRow.queue, queue),
        (ReviewRow.status, status),
        (ReviewRow.reason, reason),
        (ReviewRow.agent, agent),
        (ReviewRow.run_id, run_id),
        (ReviewRow.kind, kind),
    ):
        if value is not None:
            query = query.where(column == value)
    if older_than is not None:
        query = query.where(col(ReviewRow.created_at) <= now - older_than)
    if newer_than is not None:
        query = query.where(col(ReviewRow.created_at) >= now - newer_than)
    held = (col(ReviewRow.claimed_by).is_not(None)) & (col(ReviewRow.claim_expires_at) > now)
    if claimed is True:
        query = query.where(held, ReviewRow.status == "pending")
    elif claimed is False:
        query = query.where(or_(~held, ReviewRow.status != "pending"))
    rows = list(await session.exec(query.offset(offset).limit(limit + 1)))
    following = None
    if len(rows) > limit:
        url = request.url.include_query_params(offset=offset + limit, limit=limit)
        following = f"{url.path}?{url.query}"
    return ReviewList(
        reviews=[review_view(row, settings, now) for row in rows[:limit]], next=following
    )


@router.get("/{review_id}")
async def get_review(review_id: str, session: SessionDep, settings: SettingsDep) -> ReviewView:
    """One review: the pending action and its hash, the evidence, the claim, the decision."""
    return review_view(await _row(session, review_id), settings, datetime.now(UTC))


@router.post("/{review_id}/claim")
async def claim(
    review_id: str,
    body: ClaimRequest,
    session: SessionDep,
    runs: RunClientDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require("reviewer")],
) -> ReviewView:
    """Take a pending review for a lease (renewable by its holder); it expires by itself."""
    row = await _pending_row(session, review_id)
    claimant = _identity(principal, body.reviewer)
    _refuse_foreign_claim(row, claimant)
    await refuse_own_run(runs, row.run_id, principal)  # holding it would block the others
    lease = min(body.lease_s or settings.review_claim_lease_s, settings.review_claim_lease_s)
    await _update(
        review_id,
        runs.claim(
            row.run_id,
            ClaimInput(review_id=review_id, claimant=claimant, lease_s=lease, key=principal.key_id),
        ),
    )
    # The Update returns once the workflow has written the claim to the queue.
    await session.refresh(row)
    return review_view(row, settings, datetime.now(UTC))


@router.delete("/{review_id}/claim", status_code=status.HTTP_204_NO_CONTENT)
async def release(
    review_id: str,
    session: SessionDep,
    runs: RunClientDep,
    principal: PrincipalDep,
    reviewer: Annotated[str | None, Query(description="Who releases (open mode).")] = None,
) -> None:
    """Give a claimed review back to its queue; only its holder can, until the lease ends."""
    row = await _pending_row(session, review_id)
    claimant = principal.id or reviewer
    _refuse_foreign_claim(row, claimant)
    await _update(
        review_id,
        runs.release(
            row.run_id, ReleaseInput(review_id=review_id, claimant=claimant, key=principal.key_id)
        ),
    )


@router.post("/{review_id}/decision")
async def decide(
    review_id: str,
    decision: DecisionRequest,
    session: SessionDep,
    runs: RunClientDep,
    settings: SettingsDep,
    principal: Annotated[Principal, require("reviewer")],
) -> ReviewView:
    """Approve, edit or reject the pending action whose `action_hash` the decision names."""
    row = await _pending_row(session, review_id)
    if decision.action_hash != row.action_hash:
        raise StaleAction(
            f"review {review_id!r}: action_hash {decision.action_hash} is not the pending "
            f"action's ({row.action_hash}); read the review again",
        )
    # Who decides is the caller's principal, never what the body says (open mode: the body's
    # name); the key it used goes to the audit trail with it.
    who: dict[str, Any] = {"reviewer_id": principal.id, "reviewer_key": principal.key_id}
    if principal.id is not None:
        who["reviewer"] = principal.name
    _refuse_foreign_claim(row, principal.id or decision.reviewer)
    _check_edit(row, decision)
    await refuse_own_run(runs, row.run_id, principal)
    await _update(
        review_id,
        runs.decide(
            row.run_id, DecisionInput(review_id=review_id, **{**decision.model_dump(), **who})
        ),
    )
    # The Update returns once the workflow has written the decision to the queue.
    await session.refresh(row)
    return review_view(row, settings, datetime.now(UTC))


@router.post("/{review_id}/grade")
async def grade(
    review_id: str,
    body: GradeRequest,
    session: SessionDep,
    runs: RunClientDep,
    settings: SettingsDep,
    audit: AuditDep,
    principal: Annotated[Principal, require("reviewer")],
) -> ReviewView:
    """Grade an audit sample: the answer sent without review was correct, or wrong."""
    row = await audit_row(session, review_id)
    await refuse_own_run(runs, row.run_id, principal)
    reviewer = principal.name if principal.id is not None else body.reviewer
    graded = await grade_audit(
        session,
        audit,
        review_id,
        body.grade,
        note=body.note,
        reviewer=reviewer,
        reviewer_id=principal.id,
        reviewer_key=principal.key_id,
    )
    await agent_quality(session, settings, graded.agent)
    return review_view(graded, settings, datetime.now(UTC))


async def _update(review_id: str, update: Awaitable[object]) -> None:
    """Run a review Update; its refusal (a catalogued failure) answers as its problem."""
    try:
        await update
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # the run ended meanwhile
            raise _not_pending(review_id, "closed") from err
        raise


async def _row(session: SessionDep, review_id: str) -> ReviewRow:
    row = await session.get(ReviewRow, review_id)
    if row is None:
        raise UnknownReview(f"no review {review_id!r}")
    return row


async def _pending_row(session: SessionDep, review_id: str) -> ReviewRow:
    row = await _row(session, review_id)
    if row.kind == "audit":
        raise WrongReviewKind(
            f"review {review_id!r} is an audit of an answer already sent: no run waits on it; "
            f"grade it (POST /v1/reviews/{review_id}/grade)"
        )
    if row.status != "pending":
        raise _not_pending(review_id, row.status)
    return row


def _identity(principal: Principal, reviewer: str | None) -> str:
    """Who acts: the caller's principal (any of its keys); in open mode, the name given."""
    if principal.id is not None:
        return principal.id
    if reviewer is None:
        detail = "name who claims the review in 'reviewer' (the API runs without keys)"
        raise InvalidRequest(detail, errors=[{"field": "reviewer", "message": detail}])
    return reviewer


def _refuse_foreign_claim(row: ReviewRow, who: str | None) -> None:
    held = active_claim(row, datetime.now(UTC))
    if held is not None and held.claimant != who:
        raise ClaimedByAnother(
            f"review {row.id!r} is claimed by {held.claimant} until {held.expires_at.isoformat()}",
        )


def _check_edit(row: ReviewRow, decision: ReviewDecision) -> None:
    """An edit replaces what the review is about: a tool call's arguments, or an answer."""
    evidence = [p["id"] for p in row.passages] + [c["passage_id"] for c in row.citations]
    problem = edit_problem(row.tool_parameters, row.tool_call is not None, decision, evidence)
    if problem is not None:
        raise _EDIT_KINDS[problem.kind](problem.detail, errors=problem.errors)


def _not_pending(review_id: str, state: str) -> ReviewNotPending:
    return ReviewNotPending(f"review {review_id!r} is not pending ({state})")
