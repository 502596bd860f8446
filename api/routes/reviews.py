"""`/v1/reviews`: the human-review queue, and decisions that resume runs."""

from typing import Annotated

from fastapi import APIRouter, Query
from jsonschema import Draft202012Validator
from sqlmodel import col, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import SessionDep, SettingsDep, TemporalClientDep
from api.problems import ErrorCode, ProblemError
from keel.schemas.model import ToolCall
from keel.schemas.reviews import (
    Citation,
    DecisionInput,
    ReviewDecision,
    ReviewList,
    ReviewStatus,
    ReviewView,
)
from keel.settings import Settings
from keel.tables import ReviewRow
from workflows.agent import AgentWorkflow

__all__ = ["decide", "get_review", "list_reviews", "router"]

router = APIRouter(prefix="/v1/reviews", tags=["reviews"])


@router.get("")
async def list_reviews(
    session: SessionDep,
    settings: SettingsDep,
    status: ReviewStatus | None = None,
    run_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ReviewList:
    """Reviews, oldest first (the order a queue is worked)."""
    query = select(ReviewRow).order_by(col(ReviewRow.created_at), col(ReviewRow.id))
    if status is not None:
        query = query.where(ReviewRow.status == status)
    if run_id is not None:
        query = query.where(ReviewRow.run_id == run_id)
    rows = await session.exec(query.offset(offset).limit(limit))
    return ReviewList(reviews=[_view(row, settings) for row in rows])


@router.get("/{review_id}")
async def get_review(review_id: str, session: SessionDep, settings: SettingsDep) -> ReviewView:
    """One review with its evidence and, once decided, its decision."""
    return _view(await _row(session, review_id), settings)


@router.post("/{review_id}/decision")
async def decide(
    review_id: str,
    decision: ReviewDecision,
    session: SessionDep,
    client: TemporalClientDep,
    settings: SettingsDep,
) -> ReviewView:
    """Approve, edit or reject a pending review; the run resumes with the decision."""
    row = await _row(session, review_id)
    if row.status != "pending":
        raise _not_pending(review_id, row.status)
    _check_edit(row, decision)
    handle = client.get_workflow_handle_for(AgentWorkflow.run, row.run_id)
    try:
        await handle.execute_update(
            AgentWorkflow.decide,
            DecisionInput(review_id=review_id, **decision.model_dump()),
        )
    except WorkflowUpdateFailedError as err:
        if isinstance(err.cause, ApplicationError) and err.cause.type == "ReviewNotPending":
            raise ProblemError(409, ErrorCode.REVIEW_NOT_PENDING, err.cause.message) from err
        raise
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # the run ended meanwhile
            raise _not_pending(review_id, "closed") from err
        raise
    # The Update returns once the workflow has written the decision to the queue.
    await session.refresh(row)
    return _view(row, settings)


async def _row(session: SessionDep, review_id: str) -> ReviewRow:
    row = await session.get(ReviewRow, review_id)
    if row is None:
        raise ProblemError(404, ErrorCode.UNKNOWN_REVIEW, f"no review {review_id!r}")
    return row


def _check_edit(row: ReviewRow, decision: ReviewDecision) -> None:
    """An edit replaces what the review is about: a tool call's arguments, or an answer."""
    if decision.action != "edit":
        return
    if row.tool_call is None:
        if decision.arguments is not None:
            raise _bad_edit("this review is about an answer: edit it with 'answer'", "answer")
        return
    if decision.arguments is None:
        raise _bad_edit("this review is about a tool call: edit it with 'arguments'", "arguments")
    validator = Draft202012Validator(row.tool_parameters or {})
    errors = [
        {
            "field": ".".join(["arguments", *(str(p) for p in e.absolute_path)]),
            "message": e.message,
        }
        for e in validator.iter_errors(decision.arguments)
    ]
    if errors:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise ProblemError(422, ErrorCode.INVALID_ARGUMENTS, detail, errors)


def _bad_edit(detail: str, field: str) -> ProblemError:
    return ProblemError(422, ErrorCode.VALIDATION, detail, [{"field": field, "message": detail}])


def _not_pending(review_id: str, state: str) -> ProblemError:
    return ProblemError(
        409, ErrorCode.REVIEW_NOT_PENDING, f"review {review_id!r} is not pending ({state})"
    )


def _view(row: ReviewRow, settings: Settings) -> ReviewView:
    return ReviewView(
        id=row.id,
        run_id=row.run_id,
        agent=row.agent,
        status=row.status,  # type: ignore[arg-type]
        reason=row.reason,  # type: ignore[arg-type]
        question=row.question,
        proposed_answer=row.proposed_answer,
        citations=[Citation.model_validate(c) for c in row.citations],
        confidence=row.confidence,
        threshold=row.threshold,
        cost_usd=row.cost_usd,
        tool_call=ToolCall.model_validate(row.tool_call) if row.tool_call else None,
        answer=row.answer,
        arguments=row.arguments,
        comment=row.comment,
        reviewer=row.reviewer,
        created_at=row.created_at,
        deadline=row.deadline,
        decided_at=row.decided_at,
        ui_url=settings.run_ui_url(row.run_id),
    )
