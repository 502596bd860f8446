"""Reading runs out of Temporal: status from execution state and search attributes."""

from datetime import timedelta

from temporalio.client import (
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from keel.errors import UnknownRun
from keel.run_client import RunClient
from keel.schemas.runs import TERMINAL_STATUSES, RunState, RunStatus, RunSummary, RunView
from keel.search_attributes import KEEL_AGENT, KEEL_COST_USD, KEEL_STATUS, KEEL_SUBMITTER
from keel.settings import Settings

__all__ = ["describe_run", "run_status", "run_summary", "run_view", "status_query"]

_CLOSED_AS: dict[WorkflowExecutionStatus, RunStatus] = {
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TERMINATED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
}
_QUERY_TIMEOUT = timedelta(seconds=5)


def run_status(execution: WorkflowExecution) -> RunStatus:
    """A run's status: Temporal's when it ended abnormally, else the workflow's own."""
    status = execution.status
    if status is not None and status in _CLOSED_AS:
        return _CLOSED_AS[status]
    reported = execution.typed_search_attributes.get(KEEL_STATUS)
    if execution.status == WorkflowExecutionStatus.COMPLETED:
        return "rejected" if reported == "rejected" else "completed"
    return "awaiting_review" if reported == "awaiting_review" else "running"


def status_query(status: RunStatus) -> str:
    """The visibility query that finds runs in `status`."""
    match status:
        case "failed":
            return "ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut')"
        case "cancelled":
            return "ExecutionStatus = 'Canceled'"
        case "completed" | "rejected":
            return f"ExecutionStatus = 'Completed' AND KeelStatus = '{status}'"
        case "running" | "awaiting_review":
            return f"ExecutionStatus = 'Running' AND KeelStatus = '{status}'"


def run_summary(execution: WorkflowExecution, settings: Settings) -> RunSummary:
    """One line of a run list."""
    return RunSummary(
        run_id=execution.id,
        agent=execution.typed_search_attributes.get(KEEL_AGENT) or "",
        status=run_status(execution),
        created_at=execution.start_time,
        closed_at=execution.close_time,
        cost_usd=execution.typed_search_attributes.get(KEEL_COST_USD) or 0.0,
        submitted_by=execution.typed_search_attributes.get(KEEL_SUBMITTER),
        ui_url=settings.run_ui_url(execution.id),
    )


async def describe_run(runs: RunClient, run_id: str) -> WorkflowExecutionDescription:
    """Temporal's description of a run; 404 when there is no such run."""
    description = await runs.describe(run_id)
    if description is None:
        raise UnknownRun(f"no run {run_id!r}")
    return description


async def run_view(runs: RunClient, run_id: str, settings: Settings) -> RunView:
    """A run in full: its result once it ended, its live state while it runs."""
    description = await describe_run(runs, run_id)
    if description.status == WorkflowExecutionStatus.RUNNING:
        state = await _live_state(runs, run_id)
        if state is None or state.status not in TERMINAL_STATUSES:
            view = RunView(**run_summary(description, settings).model_dump())
            if state is not None:
                view.status, view.current_node = state.status, state.current_node
                view.pending_review, view.cost = state.pending_review, state.ledger
            return view
        # It ended between the two calls: read it as ended.
        description = await describe_run(runs, run_id)
    view = RunView(**run_summary(description, settings).model_dump())
    if description.status == WorkflowExecutionStatus.COMPLETED:
        result = await runs.result(run_id)
        view.result, view.cost = result.outcome, result.ledger
    elif view.status == "failed":
        try:
            await runs.result(run_id)
        except WorkflowFailureError as err:
            view.error = _failure_message(err)
    return view


def _failure_message(err: BaseException) -> str:
    """The root cause of a run's failure, with its type (`ActivityError` only says "failed")."""
    root = err
    while (cause := getattr(root, "cause", None) or root.__cause__) is not None:
        root = cause
    kind = root.type if isinstance(root, ApplicationError) and root.type else type(root).__name__
    return f"{kind}: {getattr(root, 'message', None) or root}"


async def _live_state(runs: RunClient, run_id: str) -> RunState | None:
    """The workflow's own view; None when no worker answers (the run goes on regardless)."""
    try:
        return await runs.state(run_id, rpc_timeout=_QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
        return None
