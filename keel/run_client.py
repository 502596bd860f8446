"""`RunClient`: the run operations on Temporal, typed, for the API, calibration and bench.

It reaches `AgentWorkflow` by the names in `keel.schemas.runs` (its workflow type, query and
Updates), never by importing the workflow, so a process that starts and reads runs (the API)
stays free of the graph code and LangGraph. Arguments and results are the pydantic models
of `keel.schemas`; failures are Temporal's own (`WorkflowFailureError`,
`WorkflowUpdateFailedError`, `RPCError`), for the caller to answer as it must.
"""

from datetime import timedelta

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from keel.schemas.reviews import Claim, ClaimInput, DecisionInput, ReleaseInput
from keel.schemas.runs import (
    AGENT_WORKFLOW,
    CLAIM_UPDATE,
    DECIDE_UPDATE,
    RELEASE_UPDATE,
    RUN_STATE_QUERY,
    Admission,
    RunResult,
    RunStart,
    RunState,
)
from keel.search_attributes import KEEL_AGENT, KEEL_COST_USD, KEEL_STATUS, KEEL_SUBMITTER

__all__ = ["REQUEST_DIGEST", "RunClient"]

REQUEST_DIGEST = "request_sha256"
"""The memo key holding a run's `Admission.request_digest`."""


class RunClient:
    """Runs of `AgentWorkflow` on one Temporal client."""

    def __init__(self, client: Client) -> None:
        """Use `client`, connected with Keel's data converter."""
        self.client = client

    async def start(self, admission: Admission, task_queue: str) -> RunStart:
        """Start the admitted run on `task_queue`; a run with its id is never started twice.

        The run carries Keel's search attributes (agent, status, cost, submitter), its
        summary, and the request's digest in its memo, which a repeated start is compared
        with. Its cost starts at $0, so a run that never pays for a call still has one and
        `KeelCostUsd` filters (`KeelCostUsd = 0`, `KeelCostUsd > 0.01`) see every run.
        """
        run = admission.input
        attributes = [
            SearchAttributePair(KEEL_AGENT, run.agent),
            SearchAttributePair(KEEL_STATUS, "running"),
            SearchAttributePair(KEEL_COST_USD, 0.0),
        ]
        if run.submitted_by is not None:
            attributes.append(SearchAttributePair(KEEL_SUBMITTER, run.submitted_by))
        try:
            await self.client.start_workflow(
                AGENT_WORKFLOW,
                run,
                id=admission.run_id,
                task_queue=task_queue,
                result_type=RunResult,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=TypedSearchAttributes(attributes),
                memo={REQUEST_DIGEST: admission.request_digest},
                static_summary=admission.summary,
            )
        except WorkflowAlreadyStartedError:
            memo = await (await self._handle(admission.run_id).describe()).memo()
            same = memo.get(REQUEST_DIGEST) == admission.request_digest
            return RunStart(run_id=admission.run_id, started=False, same_request=same)
        return RunStart(run_id=admission.run_id, started=True, same_request=True)

    async def describe(self, run_id: str) -> WorkflowExecutionDescription | None:
        """Temporal's description of the run; None when no run has that id."""
        try:
            description = await self._handle(run_id).describe()
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                return None
            raise
        return description if description.workflow_type == AGENT_WORKFLOW else None

    async def state(self, run_id: str, rpc_timeout: timedelta | None = None) -> RunState:
        """The run's live state, from its `state` query (a worker answers it)."""
        return await self._handle(run_id).query(
            RUN_STATE_QUERY, result_type=RunState, rpc_timeout=rpc_timeout
        )

    async def result(self, run_id: str) -> RunResult:
        """The run's result, once it ends; `WorkflowFailureError` when it failed."""
        return await self._handle(run_id).result()

    async def decide(self, run_id: str, decision: DecisionInput) -> None:
        """Decide the run's pending review; returns once the review queue shows it."""
        # temporalio leaves the `*args` overload of `execute_update` untyped.
        await self._handle(run_id).execute_update(  # pyright: ignore[reportUnknownMemberType]
            DECIDE_UPDATE, decision
        )

    async def claim(self, run_id: str, claim: ClaimInput) -> Claim:
        """Claim the run's pending review for a lease; the claim given."""
        return await self._handle(run_id).execute_update(  # pyright: ignore[reportUnknownMemberType]
            CLAIM_UPDATE, claim, result_type=Claim
        )

    async def release(self, run_id: str, release: ReleaseInput) -> None:
        """Give a claimed review back to its queue."""
        await self._handle(run_id).execute_update(  # pyright: ignore[reportUnknownMemberType]
            RELEASE_UPDATE, release
        )

    async def cancel(self, run_id: str) -> None:
        """Ask the run to stop (its pending review is closed as cancelled)."""
        await self._handle(run_id).cancel()

    async def terminate(self, run_id: str, reason: str) -> None:
        """End the run at once, with no clean-up in the workflow."""
        await self._handle(run_id).terminate(reason=reason)

    def _handle(self, run_id: str) -> WorkflowHandle[object, RunResult]:
        return self.client.get_workflow_handle(run_id, result_type=RunResult)
