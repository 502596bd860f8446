"""Escalation policy: when a run asks a person, in which queue, and what a deadline does.

`EscalationSettings` is what `keel.toml` (`[escalation]`) or `KEEL_ESCALATION` configures
for every agent; `RunPolicy` is one agent's policy resolved from it, carried in the run's
input so the workflow decides with no environment reads and replays the same way.
"""

from collections.abc import Sequence
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from keel.schemas.scoring import ScoreModel

__all__ = [
    "AUDIT_QUEUE",
    "DEFAULT_QUEUE",
    "GUARD_KINDS",
    "SCORE_REASONS",
    "AgentPolicy",
    "EscalationSettings",
    "ExpiryPath",
    "GuardKind",
    "NodePolicy",
    "QueueSpec",
    "ReviewReason",
    "RunPolicy",
]

GuardKind = Literal["pii", "policy_term", "suspected_injection"]
GUARD_KINDS: tuple[GuardKind, ...] = ("pii", "policy_term", "suspected_injection")
"""What a guard can flag; each is also the review reason it escalates with."""

ReviewReason = Literal[
    "low_confidence",
    "off_topic",
    "budget",
    "tool_approval",
    "pii",
    "policy_term",
    "suspected_injection",
    "not_answered",
    "partial_answer",
    "audit",
    "needs_person",
]
"""Why a run asks a person (`needs_person`: triage put the message in a category that must
never be answered alone, such as a charge dispute; `not_answered`, `partial_answer`: the
verifier's verdict; `audit`: an answer sent unreviewed, sampled to be graded)."""
SCORE_REASONS: tuple[ReviewReason, ...] = ("low_confidence", "not_answered", "partial_answer")
"""Reasons a run under a score model gives when its score escalated it: no rule decided."""
ExpiryPath = Literal["reject", "approve_if_low_risk", "escalate"]
DEFAULT_QUEUE = "default"
"""The queue of reviews no rule sends elsewhere."""
AUDIT_QUEUE = "audit"
"""The queue of audit samples: answers already sent, to be graded after the fact."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodePolicy(_Strict):
    """Overrides for one node of an agent's graph."""

    threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Confidence below which this node escalates."
    )
    escalate_on: list[GuardKind] | None = Field(
        default=None, description="Guard verdicts that escalate at this node."
    )


class AgentPolicy(_Strict):
    """One agent's escalation rules; unset fields take the global defaults."""

    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    escalate_on: list[GuardKind] | None = None
    approve_tools: list[str] = Field(
        default_factory=list, description="Tools that need approval besides their own flag."
    )
    budget_usd: float | None = Field(default=None, gt=0, description="Model spend per run.")
    queue: str | None = Field(default=None, description="Where this agent's reviews land.")
    nodes: dict[str, NodePolicy] = Field(default_factory=dict)
    audit_rate: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Share of unreviewed answers to grade."
    )
    triage_escalate: list[str] | None = Field(
        default=None,
        description="Triage labels that go to a person whatever the answer's confidence; "
        "the agent's own list when unset.",
    )
    policy_terms: list[str] | None = Field(
        default=None,
        description="Words or phrases that send this agent's runs to a person, besides "
        "`guards.policy_terms`; the agent's own list when unset.",
    )
    score: ScoreModel | None = Field(
        default=None,
        description="Decide on this combined score of the answer's evidence instead of its "
        "confidence (`keel calibrate AGENT --labelled FILE --fit` fits one).",
    )


class QueueSpec(_Strict):
    """A review queue: how long a review may wait, and what its deadline does."""

    sla_s: float | None = Field(
        default=None, gt=0, description="Seconds a review may wait; the global timeout if unset."
    )
    on_expiry: ExpiryPath = "reject"
    escalate_to: str | None = Field(
        default=None, description="The queue an `escalate` expiry moves the review to."
    )
    low_risk_confidence: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="`approve_if_low_risk`: the confidence a proposed answer needs (no tool "
        "call, no guard finding) to be approved at the deadline; anything else is rejected.",
    )


class EscalationSettings(_Strict):
    """`[escalation]`: per-agent rules, queues, and which reasons go to which queue."""

    escalate_on: list[GuardKind] = Field(
        default_factory=lambda: list(GUARD_KINDS),
        description="Guard verdicts that escalate, unless an agent or node says otherwise.",
    )
    agents: dict[str, AgentPolicy] = Field(default_factory=dict)
    audit_rate: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Share of answers sent without review that are also put in the `audit` "
        "queue, to be graded after the fact (0 disables), unless an agent says otherwise.",
    )
    queues: dict[str, QueueSpec] = Field(default_factory=dict)
    reason_queues: dict[ReviewReason, str] = Field(
        default_factory=dict[ReviewReason, str],
        description="Review reason → queue; wins over the agent's queue.",
    )

    @model_validator(mode="after")
    def _queues_exist(self) -> Self:
        self.queues.setdefault(DEFAULT_QUEUE, QueueSpec())
        named = [
            *((f"escalation.agents.{a}.queue", p.queue) for a, p in self.agents.items() if p.queue),
            *((f"escalation.reason_queues.{r}", q) for r, q in self.reason_queues.items()),
            *(
                (f"escalation.queues.{n}.escalate_to", q.escalate_to)
                for n, q in self.queues.items()
                if q.escalate_to
            ),
        ]
        for key, queue in named:
            if queue not in self.queues:
                raise ValueError(
                    f"{key} names queue {queue!r}, which is not defined; "
                    f"queues: {', '.join(sorted(self.queues))}"
                )
        for name, spec in self.queues.items():
            if spec.on_expiry == "escalate" and spec.escalate_to in (None, name):
                raise ValueError(
                    f"escalation.queues.{name}.escalate_to must name another queue "
                    "when on_expiry is 'escalate'"
                )
        return self

    def budget_usd(self, agent: str, default: float | None) -> float | None:
        """`agent`'s model spend per run: its own budget, else `default`."""
        own = self.agents.get(agent)
        return own.budget_usd if own is not None and own.budget_usd is not None else default

    def for_agent(
        self,
        agent: str,
        *,
        threshold: float,
        timeout_s: float,
        claim_lease_s: float,
        triage_escalate: Sequence[str] = (),
        policy_terms: Sequence[str] = (),
    ) -> "RunPolicy":
        """`agent`'s policy, with the global threshold and review timeout as defaults.

        `triage_escalate` and `policy_terms` are the agent's own defaults (its spec's).
        """
        own = self.agents.get(agent, AgentPolicy())
        queues = {
            name: spec.model_copy(update={"sla_s": spec.sla_s or timeout_s})
            for name, spec in self.queues.items()
        }
        return RunPolicy(
            threshold=threshold if own.threshold is None else own.threshold,
            escalate_on=self.escalate_on if own.escalate_on is None else own.escalate_on,
            approve_tools=own.approve_tools,
            queue=own.queue or DEFAULT_QUEUE,
            nodes=own.nodes,
            queues=queues,
            reason_queues=self.reason_queues,
            claim_lease_s=claim_lease_s,
            audit_rate=self.audit_rate if own.audit_rate is None else own.audit_rate,
            triage_escalate=list(
                triage_escalate if own.triage_escalate is None else own.triage_escalate
            ),
            policy_terms=list(policy_terms if own.policy_terms is None else own.policy_terms),
            score=own.score,
        )


class RunPolicy(_Strict):
    """One run's escalation policy, resolved for its agent (part of the run's input)."""

    threshold: float = Field(ge=0.0, le=1.0)
    escalate_on: list[GuardKind] = Field(default_factory=lambda: list(GUARD_KINDS))
    approve_tools: list[str] = Field(default_factory=list)
    queue: str = DEFAULT_QUEUE
    nodes: dict[str, NodePolicy] = Field(default_factory=dict)
    queues: dict[str, QueueSpec] = Field(default_factory=dict)
    reason_queues: dict[ReviewReason, str] = Field(default_factory=dict[ReviewReason, str])
    claim_lease_s: float = Field(default=300.0, gt=0, description="Longest claim a lease gives.")
    audit_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="The probability that an answer sent without review is sampled for an "
        "audit (0 for runs started before audit sampling).",
    )
    triage_escalate: list[str] = Field(
        default_factory=list, description="Triage labels that always go to a person."
    )
    policy_terms: list[str] = Field(
        default_factory=list, description="The agent's words or phrases that escalate."
    )
    score: ScoreModel | None = Field(
        default=None, description="The combined score the agent decides on, if not confidence."
    )
