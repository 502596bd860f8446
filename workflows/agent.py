"""`AgentWorkflow`: one run of one agent, durable from start to result.

The workflow takes the agent's LangGraph graph by name from the LangGraph plugin and
streams it. When the graph stops at an `interrupt()`, the workflow opens a review (an
activity writes the queue row), marks the run `awaiting_review`, and waits for the
`decide` Update or the review's deadline, whichever comes first; then it resumes the
graph with the decision. History is the source of truth: the queue row is an index of it.
"""

import asyncio
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from langgraph.types import Command
    from temporalio.langgraph import graph

    from keel.errors import BudgetDenied
    from keel.review_edits import edit_problem
    from keel.schemas.audit import AUDIT_APPEND, AuditAppend
    from keel.schemas.continuation import Carried
    from keel.schemas.policy import DEFAULT_QUEUE, ExpiryPath, QueueSpec, RunPolicy
    from keel.schemas.reviews import (
        CLAIM_REVIEW,
        CLOSE_REVIEW,
        MOVE_REVIEW,
        OPEN_REVIEW,
        Claim,
        ClaimInput,
        ClaimRecord,
        CloseReviewInput,
        DecisionInput,
        MoveReviewInput,
        PendingReview,
        ReleaseInput,
        ReviewDecision,
        ReviewRequest,
        ReviewStatus,
        action_hash,
    )
    from keel.schemas.runs import (
        AGENT_WORKFLOW,
        CLAIM_UPDATE,
        DECIDE_UPDATE,
        RELEASE_UPDATE,
        RUN_STATE_QUERY,
        AgentState,
        Outcome,
        RunInput,
        RunResult,
        RunState,
        RunStatus,
    )
    from keel.search_attributes import KEEL_COST_USD, KEEL_STATUS
    from workflows import metrics, routing
    from workflows.checkpoint import compiled
    from workflows.continuation import StopWhenDue, restore_checkpoint, saved_checkpoint
    from workflows.guards import Screening
    from workflows.policy import is_low_risk, queue_for, queue_spec
    from workflows.toolbox import Toolbox

__all__ = ["AgentWorkflow"]

_QUEUE_WRITE = {
    "start_to_close_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=10)),
}
_DECIDED: dict[str, ReviewStatus] = {"approve": "approved", "edit": "edited", "reject": "rejected"}


def _refusal(kind: str, message: str) -> ApplicationError:
    """An Update validator's refusal: never retried; its `kind` is the API's problem type."""
    return ApplicationError(message, type=kind, non_retryable=True)


def _not_pending(review_id: str, why: str) -> ApplicationError:
    return _refusal("ReviewNotPending", f"review {review_id} is not pending on this run: {why}")


def _stale(review_id: str) -> ApplicationError:
    return _refusal(
        "StaleAction",
        f"review {review_id}: the decision was made on another action than the pending one "
        "(its action_hash is missing or not current)",
    )


def _self_approval(review_id: str) -> ApplicationError:
    return _refusal(
        "SelfApproval", f"review {review_id}: nobody decides a review on a run they submitted"
    )


def _claimed(review_id: str, claim: Claim) -> ApplicationError:
    return _refusal(
        "ClaimedByAnother",
        f"review {review_id} is claimed by {claim.claimant} until {claim.expires_at.isoformat()}",
    )


def _policy_of(input: RunInput) -> RunPolicy:
    """The run's escalation policy; runs started before policies had only a threshold."""
    if input.policy is not None:
        return input.policy
    queue = QueueSpec(sla_s=input.review_timeout_s)
    return RunPolicy(threshold=input.review_threshold, queues={DEFAULT_QUEUE: queue})


def _why(request: ReviewRequest) -> str:
    if request.confidence is not None and request.threshold is not None:
        return f"{request.reason}, confidence {request.confidence:.2f} < {request.threshold:.2f}"
    return f"{request.reason}, ${request.cost_usd:.4f} spent"


@workflow.defn(name=AGENT_WORKFLOW)
class AgentWorkflow:
    """Runs an agent graph; escalates to a person when the graph interrupts."""

    @workflow.init
    def __init__(self, input: RunInput) -> None:
        self._agent = input.agent
        self._submitted_by = input.submitted_by
        self._status: RunStatus = "running"
        self._node: str | None = None
        self._pending: PendingReview | None = None
        self._decision: DecisionInput | None = None
        self._closed: set[str] = set()
        self._reviews = 0
        self._claim: Claim | None = None
        self._claims = 0  # orders the claim writes of the queue row
        self._deadline_path: ExpiryPath | None = None
        self.model_router = routing.Router(
            routing.Budget(input.budget_usd, input.budget_action), self._cost_changed
        )
        self.toolbox = Toolbox()
        self.screening = Screening(_policy_of(input))
        self._history = input.history
        if input.carried is not None:
            self._take_over(input.carried)

    @workflow.run
    async def run(self, input: RunInput) -> RunResult:
        """Run the graph to its end, through as many reviews as it asks for."""
        if input.carried is None:  # a continuation is the same run
            metrics.run_started(input.agent)
        agent_graph = graph(input.agent)
        app = compiled(agent_graph)
        config: Any = {"configurable": {"thread_id": workflow.info().workflow_id}}
        state = AgentState(input=input.input, review_threshold=input.review_threshold)
        command: Any = state.model_dump(mode="json")
        if input.carried is not None:
            await restore_checkpoint(app.checkpointer, config, input.carried.checkpoint)
            command = None  # go on from the checkpoint
        try:
            while True:
                await self._advance(app, command, config)
                snapshot = await app.aget_state(config)
                if not snapshot.interrupts:
                    if snapshot.next:  # stopped between two steps: the history is full
                        await self._continue_as_new(input, app, config)
                    break
                request = ReviewRequest.model_validate(snapshot.interrupts[0].value)
                decision = await self._review(input, request)
                command = Command(resume=decision.model_dump(mode="json"))
        except asyncio.CancelledError:
            await self._close_pending("cancelled", ReviewDecision(action="reject"))
            self._set_status("cancelled")
            await self._audit_finished("cancelled", None)
            raise
        except BudgetDenied:
            outcome = Outcome(answer=None, confidence=0.0, reviewed=True)
            result = RunResult(status="rejected", outcome=outcome)
        except (ActivityError, ApplicationError):
            self._set_status("failed")
            await self._audit_finished("failed", None)
            raise
        else:
            result = RunResult.model_validate(snapshot.values["result"])
        result.ledger = self.model_router.ledger
        self._node = None
        self._set_status(result.status)
        await self._audit_finished(result.status, result.outcome.answer)
        return result

    def _take_over(self, carried: Carried) -> None:
        """Start where the run before this continuation stopped (no review was pending)."""
        self._reviews = carried.reviews
        prefix = f"{workflow.info().workflow_id}.review-"
        self._closed = {f"{prefix}{n}" for n in range(1, carried.reviews + 1)}
        self.model_router.ledger = carried.ledger
        self.model_router.budget.limit_usd = carried.budget_usd

    async def _continue_as_new(self, input: RunInput, app: Any, config: Any) -> NoReturn:
        await workflow.wait_condition(workflow.all_handlers_finished)
        before = input.carried.continuations if input.carried is not None else 0
        carried = Carried(
            checkpoint=await saved_checkpoint(app.checkpointer, config),
            ledger=self.model_router.ledger,
            budget_usd=self.model_router.budget.limit_usd,
            reviews=self._reviews,
            continuations=before + 1,
        )
        workflow.continue_as_new(input.model_copy(update={"carried": carried}))

    async def _audit_finished(self, status: RunStatus, answer: str | None) -> None:
        # A local activity: the last audit entry costs no extra round trip to the server.
        info = workflow.info()
        entry = AuditAppend.run_finished(
            info.workflow_id, info.run_id, status, self.model_router.ledger.total_usd, answer
        )
        await workflow.execute_local_activity(
            AUDIT_APPEND, entry, start_to_close_timeout=timedelta(seconds=10)
        )

    @workflow.query(name=RUN_STATE_QUERY)
    def state(self) -> RunState:
        """Where the run is: its status, its current node, the review it waits on."""
        return RunState(
            status=self._status,
            current_node=self._node,
            pending_review=self._pending,
            ledger=self.model_router.ledger,
        )

    @workflow.update(name=DECIDE_UPDATE)
    async def decide(self, decision: DecisionInput) -> None:
        """Record a reviewer's decision; returns once the review queue shows it."""
        review_id = decision.review_id
        await self._opened(review_id)
        # Another handler of this workflow task may have decided or claimed meanwhile.
        self._validate_decision(decision)
        self._decision = decision
        await workflow.wait_condition(lambda: review_id in self._closed)

    @decide.validator
    def _validate_decision(self, decision: DecisionInput) -> None:
        # Runs before the Update enters history: a stale or forged decision never does.
        self._refuse_unless_pending(decision.review_id)
        if decision.reviewer_id is not None and decision.reviewer_id == self._submitted_by:
            raise _self_approval(decision.review_id)
        pending = self._pending
        if pending is None or decision.action_hash != pending.action_hash:
            raise _stale(decision.review_id)
        self._refuse_claim_of_another(decision.review_id, decision.decider)
        problem = edit_problem(pending.tool_parameters, pending.tool_call is not None, decision)
        if problem is not None:
            raise _refusal("InvalidEdit", problem.detail)

    @workflow.update(name=CLAIM_UPDATE)
    async def claim(self, claim: ClaimInput) -> Claim:
        """Give `claim.claimant` the pending review for a lease; returns the claim."""
        await self._opened(claim.review_id)
        self._validate_claim(claim)
        lease = min(claim.lease_s, self.screening.policy.claim_lease_s)
        expires_at = workflow.now() + timedelta(seconds=lease)
        held = Claim(claimant=claim.claimant, expires_at=expires_at)
        await self._record_claim(claim.review_id, held)
        return held

    @claim.validator
    def _validate_claim(self, claim: ClaimInput) -> None:
        self._refuse_unless_pending(claim.review_id)
        if claim.claimant == self._submitted_by:  # who may not decide may not claim either
            raise _self_approval(claim.review_id)
        self._refuse_claim_of_another(claim.review_id, claim.claimant)

    @workflow.update(name=RELEASE_UPDATE)
    async def release(self, release: ReleaseInput) -> None:
        """Give a claimed review back to its queue (nothing to do when it is not claimed)."""
        await self._opened(release.review_id)
        self._validate_release(release)
        if self._claim is not None:
            await self._record_claim(release.review_id, None)

    @release.validator
    def _validate_release(self, release: ReleaseInput) -> None:
        self._refuse_unless_pending(release.review_id)
        self._refuse_claim_of_another(release.review_id, release.claimant)

    async def _opened(self, review_id: str) -> None:
        # Handlers run before the main coroutine within one workflow task, so after a worker
        # crash the review an Update names may not be re-opened yet: wait for it.
        await workflow.wait_condition(
            lambda: (
                review_id in self._closed
                or (self._pending is not None and self._pending.review_id == review_id)
            )
        )

    def _refuse_unless_pending(self, review_id: str) -> None:
        prefix = f"{workflow.info().workflow_id}.review-"
        number = review_id.removeprefix(prefix)
        if not number.isdigit() or not 0 < int(number) <= self._reviews:
            raise _not_pending(review_id, "this run has no such review")
        pending = self._pending
        decided = pending is not None and pending.review_id == review_id and self._decision
        if review_id in self._closed or decided:
            raise _not_pending(review_id, "it was already decided")

    def _refuse_claim_of_another(self, review_id: str, who: str | None) -> None:
        held = self._claim
        if held is not None and held.claimant != who and held.expires_at > workflow.now():
            raise _claimed(review_id, held)

    async def _record_claim(self, review_id: str, held: Claim | None) -> None:
        self._claim = held
        self._claims += 1
        if self._pending is not None and self._pending.review_id == review_id:
            self._pending = self._pending.model_copy(update={"claim": held})
        record = ClaimRecord(
            review_id=review_id,
            claimant=None if held is None else held.claimant,
            expires_at=None if held is None else held.expires_at,
            version=self._claims,
        )
        summary = "release review" if held is None else f"claim review: {held.claimant}"
        await workflow.execute_activity(CLAIM_REVIEW, record, summary=summary, **_QUEUE_WRITE)

    async def _advance(self, app: Any, command: Any, config: Any) -> None:
        # Checkpoints live only in workflow memory, and history is what survives, so the
        # graph saves one when it stops (at an interrupt or its end), not after every step.
        # It also stops between two steps once the history is due to continue as new.
        stop = StopWhenDue(self._history)
        stream = app.astream(
            command, config, stream_mode="tasks", durability="exit", interrupt_after=stop
        )
        async for task in stream:
            if "input" in task:  # a task starts; its result event has no "input"
                self._node = task["name"]
                workflow.set_current_details(f"node: {task['name']}")

    async def _review(self, input: RunInput, request: ReviewRequest) -> ReviewDecision:
        self._reviews += 1
        info = workflow.info()
        policy = self.screening.policy
        opened_at = workflow.now()
        queue = queue_for(policy, request.reason)
        review_id = f"{info.workflow_id}.review-{self._reviews}"
        pending = PendingReview(
            **request.model_dump(),
            review_id=review_id,
            run_id=info.workflow_id,
            agent=input.agent,
            opened_at=opened_at,
            deadline=opened_at + self._sla(queue),
            queue=queue,
            action_hash=action_hash(review_id, request),
        )
        # Known before its row is written, so the Update validators can judge a decision on it.
        self._pending, self._decision, self._claim = pending, None, None
        await workflow.execute_activity(
            OPEN_REVIEW,
            pending,
            summary=f"open review ({_why(request)})",
            **_QUEUE_WRITE,
        )
        metrics.review_opened(input.agent, request.reason)
        self._set_status("awaiting_review")
        workflow.set_current_details(f"awaiting review {pending.review_id} ({_why(request)})")
        status = await self._await_decision()
        assert self._decision is not None
        decision = ReviewDecision.model_validate(self._decision.model_dump(exclude={"review_id"}))
        await self._close_pending(status or _DECIDED[decision.action], decision)
        self._set_status("running")
        return decision

    async def _await_decision(self) -> ReviewStatus | None:
        """Wait for a decision, or let the queue's deadline path decide (its status then).

        The deadline is a workflow timer: it fires on the server even when no worker is up,
        and the next worker to pick the run up takes the path.
        """
        policy = self.screening.policy
        while True:
            pending = self._pending
            assert pending is not None
            wait = max(pending.deadline - workflow.now(), timedelta(milliseconds=1))
            try:
                await workflow.wait_condition(lambda: self._decision is not None, timeout=wait)
                return None
            except TimeoutError:
                spec = queue_spec(policy, pending.queue)
            if spec.on_expiry == "escalate" and spec.escalate_to:
                await self._move(pending, spec.escalate_to)
                continue
            approve = spec.on_expiry == "approve_if_low_risk" and is_low_risk(pending, spec)
            why = "approved at its deadline as low risk" if approve else "its deadline passed"
            # Taking the expiry as the decision also refuses any decision that arrives now.
            self._decision = DecisionInput(
                review_id=pending.review_id,
                action="approve" if approve else "reject",
                comment=f"{why} ({spec.on_expiry})",
            )
            self._deadline_path = spec.on_expiry
            return "approved" if approve else "expired"

    async def _move(self, pending: PendingReview, queue: str) -> None:
        moved = pending.model_copy(
            update={"queue": queue, "deadline": workflow.now() + self._sla(queue), "claim": None}
        )
        self._pending, self._claim = moved, None
        self._claims += 1  # a claim write still in flight must not win over the move
        await workflow.execute_activity(
            MOVE_REVIEW,
            MoveReviewInput(
                review_id=moved.review_id,
                queue=queue,
                deadline=moved.deadline,
                version=self._claims,
            ),
            summary=f"deadline: move review to {queue}",
            **_QUEUE_WRITE,
        )
        workflow.set_current_details(f"awaiting review {moved.review_id} in {queue}")

    def _sla(self, queue: str) -> timedelta:
        spec = queue_spec(self.screening.policy, queue)
        return timedelta(seconds=spec.sla_s or 7 * 24 * 3600)

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
            reviewer_id=self._decision.reviewer_id if self._decision is not None else None,
            decided_at=workflow.now(),
            deadline_path=self._deadline_path,
        )
        await workflow.execute_activity(
            CLOSE_REVIEW, close, summary=f"close review: {status}", **_QUEUE_WRITE
        )
        self._pending, self._claim, self._deadline_path = None, None, None
        self._closed.add(pending.review_id)
        metrics.review_closed(
            pending.agent, pending.reason, status, close.decided_at - pending.opened_at
        )

    def _cost_changed(self, total_usd: float) -> None:
        workflow.upsert_search_attributes([KEEL_COST_USD.value_set(total_usd)])

    def _set_status(self, status: RunStatus) -> None:
        if status in ("completed", "rejected", "failed", "cancelled"):
            metrics.run_finished(self._agent, status)
        self._status = status
        workflow.upsert_search_attributes([KEEL_STATUS.value_set(status)])
