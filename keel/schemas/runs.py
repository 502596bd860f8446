"""Runs: how an application starts one, and what it can read back."""

from datetime import datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, Field, JsonValue, model_validator

from keel.schemas.continuation import Carried, HistoryLimits
from keel.schemas.policy import DEFAULT_QUEUE, QueueSpec, RunPolicy
from keel.schemas.reviews import Citation, PendingReview
from keel.schemas.routing import Ledger
from keel.schemas.scoring import Signals

__all__ = [
    "AGENT_WORKFLOW",
    "CLAIM_UPDATE",
    "DECIDE_UPDATE",
    "RELEASE_UPDATE",
    "RUN_STATE_QUERY",
    "TERMINAL_STATUSES",
    "Admission",
    "AgentInfo",
    "AgentList",
    "AgentState",
    "Outcome",
    "RunEvent",
    "RunInput",
    "RunList",
    "RunRequest",
    "RunResult",
    "RunStart",
    "RunStarted",
    "RunState",
    "RunStatus",
    "RunSummary",
    "RunView",
]

RunStatus = Literal["running", "awaiting_review", "completed", "rejected", "failed", "cancelled"]

TERMINAL_STATUSES: frozenset[RunStatus] = frozenset(
    {"completed", "rejected", "failed", "cancelled"}
)
"""The statuses a run ends in."""

# A run's workflow (`workflows.agent.AgentWorkflow`) by name: the API reaches runs through
# these, so it never imports the workflow code (and LangGraph with it).
AGENT_WORKFLOW = "AgentWorkflow"
"""Workflow type of every run: input `RunInput`, result `RunResult`."""
RUN_STATE_QUERY = "state"
"""Query: the run's `RunState`."""
DECIDE_UPDATE = "decide"
"""Update: a `DecisionInput` on the pending review."""
CLAIM_UPDATE = "claim"
"""Update: a `ClaimInput` on the pending review; returns the `Claim`."""
RELEASE_UPDATE = "release"
"""Update: a `ReleaseInput` giving a claimed review back."""


class RunRequest(BaseModel):
    """`POST /v1/runs`: which agent, on what input.

    `input` is an object matching the agent's input schema, or a string that becomes the
    agent's text field (e.g. the `question` of `support`).
    """

    agent: str = Field(min_length=1, max_length=100)
    input: dict[str, JsonValue] | str
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class RunInput(BaseModel):
    """The workflow's input: the validated agent input plus the run's policy and limits."""

    agent: str
    input: dict[str, JsonValue] = Field(description="Validated against the agent's input model.")
    policy: RunPolicy = Field(description="The agent's escalation policy, resolved at start.")
    budget_usd: float | None = Field(default=None, gt=0, description="Model spend allowed.")
    budget_action: Literal["escalate", "fail"] = "escalate"
    submitted_by: str | None = Field(
        default=None,
        description="The principal that started the run (None: open); a key's id on runs "
        "started before principals, which is that key's principal's id.",
    )
    history: HistoryLimits = Field(
        default_factory=HistoryLimits, description="When the run continues as new."
    )
    carried: Carried | None = Field(
        default=None, description="Set on a continuation: where the run before it stopped."
    )

    @model_validator(mode="before")
    @classmethod
    def _fold_legacy_review_fields(cls, data: Any) -> Any:
        """Read a run's input from before `policy` held the review threshold and timeout.

        Such a run carried `review_threshold` and `review_timeout_s`. When it also had a
        `policy`, that was the whole policy (the two fields were ignored); when not, its
        policy was the threshold alone, with the timeout as the default queue's deadline.
        Folded so, its history replays with the same decisions.
        """
        if not isinstance(data, dict):
            return data
        fields = cast(dict[str, Any], data)
        if not {"review_threshold", "review_timeout_s"} & fields.keys():
            return fields
        folded = dict(fields)
        threshold: float | None = folded.pop("review_threshold", None)
        timeout_s: float | None = folded.pop("review_timeout_s", None)
        if folded.get("policy") is None and threshold is not None:
            queue = QueueSpec(sla_s=timeout_s)
            folded["policy"] = RunPolicy(threshold=threshold, queues={DEFAULT_QUEUE: queue})
        return folded


class Admission(BaseModel):
    """A run admitted to start (`keel.admission.admit`): what starting it needs."""

    run_id: str = Field(description="The workflow id; equal idempotency keys give equal ids.")
    input: RunInput
    request_digest: str = Field(
        description="SHA-256 of the agent and validated input: a repeated start must match it."
    )
    summary: str = Field(description="The run's static summary in the Temporal UI.")


class RunStart(BaseModel):
    """What starting an admitted run did (`keel.run_client.RunClient.start`)."""

    run_id: str
    started: bool = Field(description="False: a run with this id had started already.")
    same_request: bool = Field(
        description="The run is this request's: started now, or by an equal request before."
    )


class Outcome(BaseModel):
    """What a run produced."""

    answer: str | None
    citations: list[Citation] = Field(default_factory=list[Citation])
    confidence: float = Field(ge=0.0, le=1.0)
    reviewed: bool = False
    signals: Signals | None = Field(
        default=None, description="The evidence behind `confidence`, where the agent has it."
    )


class RunResult(BaseModel):
    """The workflow's result."""

    status: Literal["completed", "rejected"]
    outcome: Outcome
    ledger: Ledger = Field(default_factory=Ledger)


class RunState(BaseModel):
    """The workflow's live state, answered by its `state` query."""

    status: RunStatus
    current_node: str | None = None
    pending_review: PendingReview | None = None
    ledger: Ledger = Field(default_factory=Ledger)


class RunStarted(BaseModel):
    """`202` answer to a start."""

    run_id: str
    agent: str
    status: RunStatus
    ui_url: str


class RunSummary(BaseModel):
    """One run in a list."""

    run_id: str
    agent: str
    status: RunStatus
    created_at: datetime
    closed_at: datetime | None = None
    cost_usd: float = Field(default=0.0, description="Model spend (search attribute KeelCostUsd).")
    submitted_by: str | None = Field(
        default=None,
        description="The principal that started it (search attribute KeelSubmitter).",
    )
    ui_url: str


class RunView(RunSummary):
    """One run in full."""

    current_node: str | None = None
    result: Outcome | None = None
    pending_review: PendingReview | None = None
    cost: Ledger | None = Field(default=None, description="Model calls and their cost.")
    error: str | None = None


class RunList(BaseModel):
    """A page of runs; pass `next_page_token` back as `page_token` for the next."""

    runs: list[RunSummary]
    next_page_token: str | None = None


class AgentInfo(BaseModel):
    """An agent the API can start."""

    name: str
    description: str
    text_field: str
    input_schema: dict[str, JsonValue]


class AgentList(BaseModel):
    """Every agent."""

    agents: list[AgentInfo]


class AgentState(BaseModel):
    """The fields every agent graph's state starts with and ends with.

    The workflow fills `input` and `review_threshold`; the graph's last node sets `result`.
    """

    input: dict[str, JsonValue]
    review_threshold: float = Field(ge=0.0, le=1.0)
    result: RunResult | None = None


class RunEvent(BaseModel):
    """One step of a run as `GET /v1/runs/{id}/events` streams it.

    Types: `run.started`, `step.started` / `step.finished` / `step.failed` (an activity:
    a tool, a model call, a retrieval; `step` is its type, `detail` its summary),
    `review.decided`, `status` (the run's status or cost changed), `run.continued` (the run
    went on in a fresh history: continue-as-new), `run.finished`.
    """

    type: Literal[
        "run.started",
        "step.started",
        "step.finished",
        "step.failed",
        "review.decided",
        "status",
        "run.continued",
        "run.finished",
    ]
    at: datetime
    step: str | None = None
    attempt: int | None = None
    detail: str | None = None
    status: RunStatus | None = None
    cost_usd: float | None = None
