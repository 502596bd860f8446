"""`AgentWorkflow`: one run of one agent, durable from start to result.

The workflow takes the agent's LangGraph graph by name from the LangGraph plugin and
streams it. When the graph stops at an `interrupt()`, the run's review desk
(`workflows.review_desk`) opens a review, marks the run `awaiting_review`, and waits for
the `decide` Update or the review's deadline, whichever comes first; then the workflow
resumes the graph with the decision.
"""

import asyncio
from typing import Any, NoReturn, cast

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command
    from temporalio.langgraph import graph

    from keel.errors import BudgetDenied
    from keel.schemas.audit import AUDIT_ANCHOR, AUDIT_APPEND, AuditAppend, AuditHead
    from keel.schemas.continuation import Carried
    from keel.schemas.reviews import (
        Claim,
        ClaimInput,
        DecisionInput,
        ReleaseInput,
        ReviewDecision,
        ReviewRequest,
    )
    from keel.schemas.runs import (
        AGENT_WORKFLOW,
        CLAIM_UPDATE,
        DECIDE_UPDATE,
        RELEASE_UPDATE,
        RUN_STATE_QUERY,
        TERMINAL_STATUSES,
        AgentState,
        Outcome,
        RunInput,
        RunResult,
        RunState,
        RunStatus,
    )
    from keel.search_attributes import KEEL_COST_USD, KEEL_STATUS
    from workflows import metrics, routing
    from workflows.activity_options import AUDIT_APPEND_OPTIONS
    from workflows.audit_sampling import sample_for_audit
    from workflows.checkpoint import compiled
    from workflows.continuation import StopWhenDue, restore_checkpoint, saved_checkpoint
    from workflows.guards import Screening
    from workflows.review_desk import ReviewDesk
    from workflows.run_context import RunContext, bind_run_context
    from workflows.toolbox import Toolbox

__all__ = ["AgentWorkflow"]

_AUDIT_ANCHOR_PATCH = "audit-anchor"
"""Runs from this patch on record their last audit entry's head in their memo."""


@workflow.defn(name=AGENT_WORKFLOW)
class AgentWorkflow:
    """Runs an agent graph; escalates to a person when the graph interrupts."""

    @workflow.init
    def __init__(self, input: RunInput) -> None:
        self._agent = input.agent
        self._status: RunStatus = "running"
        self._node: str | None = None
        self._context = RunContext(
            router=routing.Router(
                routing.Budget(input.budget_usd, input.budget_action), self._cost_changed
            ),
            toolbox=Toolbox(),
            screening=Screening(input.policy),
        )
        self.desk = ReviewDesk(self._context.screening.policy, input.submitted_by, self._set_status)
        self._history = input.history
        if input.carried is not None:
            self._take_over(input.carried)

    @workflow.run
    async def run(self, input: RunInput) -> RunResult:
        """Run the graph to its end, through as many reviews as it asks for."""
        if input.carried is None:  # a continuation is the same run
            metrics.run_started(input.agent)
        bind_run_context(self._context)  # for the graph's nodes, run in this task
        agent_graph = graph(input.agent)
        app = compiled(agent_graph)
        config: Any = {"configurable": {"thread_id": workflow.info().workflow_id}}
        state = AgentState(input=input.input, review_threshold=input.policy.threshold)
        command: Any = state.model_dump(mode="json")
        if input.carried is not None:
            # `compiled` gives each run an InMemorySaver; langgraph types it loosely, unbound.
            saver = cast(InMemorySaver, app.checkpointer)  # pyright: ignore[reportUnknownMemberType]
            await restore_checkpoint(saver, config, input.carried.checkpoint)
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
                decision = await self.desk.review(input.agent, request)
                command = Command(resume=decision.model_dump(mode="json"))
        except asyncio.CancelledError:
            await self.desk.close_pending("cancelled", ReviewDecision(action="reject"))
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
        result.ledger = self._context.router.ledger
        self._node = None
        self._set_status(result.status)
        # The answer is final; a share of those sent without review is graded later.
        await sample_for_audit(input.agent, input.input, input.policy, result.outcome)
        await self._audit_finished(result.status, result.outcome.answer)
        return result

    def _take_over(self, carried: Carried) -> None:
        """Start where the run before this continuation stopped (no review was pending)."""
        self.desk.take_over(carried.reviews)
        self._context.router.ledger = carried.ledger
        self._context.router.budget.limit_usd = carried.budget_usd

    async def _continue_as_new(self, input: RunInput, app: Any, config: Any) -> NoReturn:
        await workflow.wait_condition(workflow.all_handlers_finished)
        before = input.carried.continuations if input.carried is not None else 0
        carried = Carried(
            checkpoint=await saved_checkpoint(app.checkpointer, config),
            ledger=self._context.router.ledger,
            budget_usd=self._context.router.budget.limit_usd,
            reviews=self.desk.reviews,
            continuations=before + 1,
        )
        workflow.continue_as_new(input.model_copy(update={"carried": carried}))

    async def _audit_finished(self, status: RunStatus, answer: str | None) -> None:
        # A local activity: the last audit entry costs no extra round trip to the server.
        info = workflow.info()
        entry = AuditAppend.run_finished(
            info.workflow_id, info.run_id, status, self._context.router.ledger.total_usd, answer
        )
        options = AUDIT_APPEND_OPTIONS.for_local_activity()
        if not workflow.patched(_AUDIT_ANCHOR_PATCH):  # replaying a run that ended before anchors
            await workflow.execute_local_activity(AUDIT_APPEND, entry, **options)
            return
        head = await workflow.execute_local_activity(
            AUDIT_APPEND, entry, result_type=AuditHead, **options
        )
        # The anchor: the chain's head, kept in the run's history where no writer of Keel's
        # database can rewrite it (`keel audit verify` compares the trail with it).
        workflow.upsert_memo({AUDIT_ANCHOR: head.model_dump()})

    @workflow.query(name=RUN_STATE_QUERY)
    def state(self) -> RunState:
        """Where the run is: its status, its current node, the review it waits on."""
        return RunState(
            status=self._status,
            current_node=self._node,
            pending_review=self.desk.pending,
            ledger=self._context.router.ledger,
        )

    @workflow.update(name=DECIDE_UPDATE)
    async def decide(self, decision: DecisionInput) -> None:
        """Record a reviewer's decision; returns once the review queue shows it."""
        await self.desk.decide(decision)

    @decide.validator
    def _validate_decision(self, decision: DecisionInput) -> None:
        self.desk.refuse_decision(decision)

    @workflow.update(name=CLAIM_UPDATE)
    async def claim(self, claim: ClaimInput) -> Claim:
        """Give `claim.claimant` the pending review for a lease; returns the claim."""
        return await self.desk.claim(claim)

    @claim.validator
    def _validate_claim(self, claim: ClaimInput) -> None:
        self.desk.refuse_claim(claim)

    @workflow.update(name=RELEASE_UPDATE)
    async def release(self, release: ReleaseInput) -> None:
        """Give a claimed review back to its queue (nothing to do when it is not claimed)."""
        await self.desk.release(release)

    @release.validator
    def _validate_release(self, release: ReleaseInput) -> None:
        self.desk.refuse_release(release)

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

    def _cost_changed(self, total_usd: float) -> None:
        # temporalio types the updates as bare (unparameterised) `SearchAttributeUpdate`s.
        workflow.upsert_search_attributes([KEEL_COST_USD.value_set(total_usd)])  # pyright: ignore[reportUnknownMemberType]

    def _set_status(self, status: RunStatus) -> None:
        if status in TERMINAL_STATUSES:
            metrics.run_finished(self._agent, status)
        self._status = status
        workflow.upsert_search_attributes([KEEL_STATUS.value_set(status)])  # pyright: ignore[reportUnknownMemberType]
