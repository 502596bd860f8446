"""`AgentWorkflow`: one run of one agent, durable from start to result.

The workflow takes the agent's LangGraph graph by name from the LangGraph plugin and
streams it. When the graph stops at an `interrupt()`, the workflow opens a review (an
activity writes the queue row), marks the run `awaiting_review`, and waits for the
`decide` Update or the review's deadline, whichever comes first; then it resumes the
graph with the decision. History is the source of truth: the queue row is an index of it.
"""

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from langgraph.types import Command
    from temporalio.langgraph import graph

    from keel.errors import BudgetDenied
    from keel.schemas.reviews import (
        CLOSE_REVIEW,
        OPEN_REVIEW,
        CloseReviewInput,
        DecisionInput,
        PendingReview,
        ReviewDecision,
        ReviewRequest,
        ReviewStatus,
    )
    from keel.schemas.runs import AgentState, Outcome, RunInput, RunResult, RunState, RunStatus
    from keel.search_attributes import KEEL_COST_USD, KEEL_STATUS
    from workflows import routing
    from workflows.checkpoint import checkpointer_for
    from workflows.toolbox import Toolbox

__all__ = ["AgentWorkflow"]

_QUEUE_WRITE = {
    "start_to_close_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=10)),
}
_DECIDED: dict[str, ReviewStatus] = {"approve": "approved", "edit": "edited", "reject": "rejected"}


def _not_pending(review_id: str, why: str) -> ApplicationError:
    return ApplicationError(
        f"review {review_id} is not pending on this run: {why}",
        type="ReviewNotPending",
        non_retryable=True,
    )


def _why(request: ReviewRequest) -> str:
    if request.confidence is not None and request.threshold is not None:
        return f"{request.reason}, confidence {request.confidence:.2f} < {request.threshold:.2f}"
    return f"{request.reason}, ${request.cost_usd:.4f} spent"


@workflow.defn
class AgentWorkflow:
    """Runs an agent graph; escalates to a person when the graph interrupts."""

    @workflow.init
    def __init__(self, input: RunInput) -> None:
        self._status: RunStatus = "running"
        self._node: str | None = None
        self._pending: PendingReview | None = None
        self._decision: DecisionInput | None = None
        self._closed: set[str] = set()
        self._reviews = 0
        self.model_router = routing.Router(
            routing.Budget(input.budget_usd, input.budget_action), self._cost_changed
        )
        self.toolbox = Toolbox()

    @workflow.run
    async def run(self, input: RunInput) -> RunResult:
        """Run the graph to its end, through as many reviews as it asks for."""
        agent_graph = graph(input.agent)
        app = agent_graph.compile(checkpointer=checkpointer_for(agent_graph.state_schema))
        config: Any = {"configurable": {"thread_id": workflow.info().workflow_id}}
        state = AgentState(input=input.input, review_threshold=input.review_threshold)
        command: Any = state.model_dump(mode="json")
        try:
            while True:
                await self._advance(app, command, config)
                snapshot = await app.aget_state(config)
                if not snapshot.interrupts:
                    break
                request = ReviewRequest.model_validate(snapshot.interrupts[0].value)
                decision = await self._review(input, request)
                command = Command(resume=decision.model_dump(mode="json"))
        except asyncio.CancelledError:
            await self._close_pending("cancelled", ReviewDecision(action="reject"))
            self._set_status("cancelled")
            raise
        except BudgetDenied:
            outcome = Outcome(answer=None, confidence=0.0, reviewed=True)
            result = RunResult(status="rejected", outcome=outcome)
        except (ActivityError, ApplicationError):
            self._set_status("failed")
            raise
        else:
            result = RunResult.model_validate(snapshot.values["result"])
        result.ledger = self.model_router.ledger
        self._node = None
        self._set_status(result.status)
        return result

    @workflow.query
    def state(self) -> RunState:
        """Where the run is: its status, its current node, the review it waits on."""
        return RunState(
            status=self._status,
            current_node=self._node,
            pending_review=self._pending,
            ledger=self.model_router.ledger,
        )

    @workflow.update
    async def decide(self, decision: DecisionInput) -> None:
        """Record a reviewer's decision; returns once the review queue shows it."""
        review_id = decision.review_id
        # Handlers run before the main coroutine within one workflow task, so after a worker
        # crash the review this decision names may not be re-opened yet: wait for it.
        await workflow.wait_condition(
            lambda: (
                review_id in self._closed
                or (self._pending is not None and self._pending.review_id == review_id)
            )
        )
        if review_id in self._closed or self._decision is not None:
            raise _not_pending(review_id, "it was already decided")
        self._decision = decision
        await workflow.wait_condition(lambda: review_id in self._closed)

    @decide.validator
    def _validate_decision(self, decision: DecisionInput) -> None:
        # Runs before the Update enters history: a stale or unknown decision never does.
        prefix = f"{workflow.info().workflow_id}.review-"
        number = decision.review_id.removeprefix(prefix)
        if not number.isdigit() or not 0 < int(number) <= self._reviews:
            raise _not_pending(decision.review_id, "this run has no such review")
        pending = self._pending
        decided = pending is not None and pending.review_id == decision.review_id and self._decision
        if decision.review_id in self._closed or decided:
            raise _not_pending(decision.review_id, "it was already decided")

    async def _advance(self, app: Any, command: Any, config: Any) -> None:
        # Checkpoints live only in workflow memory, and history is what survives, so the
        # graph saves one when it stops (at an interrupt or its end), not after every step.
        async for task in app.astream(command, config, stream_mode="tasks", durability="exit"):
            if "input" in task:  # a task starts; its result event has no "input"
                self._node = task["name"]
                workflow.set_current_details(f"node: {task['name']}")

    async def _review(self, input: RunInput, request: ReviewRequest) -> ReviewDecision:
        self._reviews += 1
        info = workflow.info()
        opened_at = workflow.now()
        timeout = timedelta(seconds=input.review_timeout_s)
        pending = PendingReview(
            **request.model_dump(),
            review_id=f"{info.workflow_id}.review-{self._reviews}",
            run_id=info.workflow_id,
            agent=input.agent,
            opened_at=opened_at,
            deadline=opened_at + timeout,
        )
        await workflow.execute_activity(
            OPEN_REVIEW,
            pending,
            summary=f"open review ({_why(request)})",
            **_QUEUE_WRITE,
        )
        self._pending, self._decision = pending, None
        self._set_status("awaiting_review")
        workflow.set_current_details(f"awaiting review {pending.review_id} ({_why(request)})")
        expired = False
        try:
            await workflow.wait_condition(lambda: self._decision is not None, timeout=timeout)
        except TimeoutError:
            # Taking the expiry as the decision also refuses any decision that arrives now.
            self._decision = DecisionInput(
                review_id=pending.review_id, action="reject", comment="the review's deadline passed"
            )
            expired = True
        assert self._decision is not None
        decision = ReviewDecision.model_validate(self._decision.model_dump(exclude={"review_id"}))
        await self._close_pending("expired" if expired else _DECIDED[decision.action], decision)
        self._set_status("running")
        return decision

    async def _close_pending(self, status: ReviewStatus, decision: ReviewDecision) -> None:
        pending = self._pending
        if pending is None:
            return
        close = CloseReviewInput(
            review_id=pending.review_id,
            status=status,
            answer=decision.answer,
            arguments=decision.arguments,
            comment=decision.comment,
            reviewer=decision.reviewer,
            decided_at=workflow.now(),
        )
        await workflow.execute_activity(
            CLOSE_REVIEW, close, summary=f"close review: {status}", **_QUEUE_WRITE
        )
        self._pending = None
        self._closed.add(pending.review_id)

    def _cost_changed(self, total_usd: float) -> None:
        workflow.upsert_search_attributes([KEEL_COST_USD.value_set(total_usd)])

    def _set_status(self, status: RunStatus) -> None:
        self._status = status
        workflow.upsert_search_attributes([KEEL_STATUS.value_set(status)])
