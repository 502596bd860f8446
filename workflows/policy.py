"""The escalation policy: pure, deterministic rules the agents apply.

Given a run's `RunPolicy` (resolved from `[escalation]` for its agent) and what a node
knows — a confidence, the guards' findings, the tool it is about to call — these functions
say whether a person must look, why (`ReviewReason`), in which queue, and what the
queue's deadline does. A finding escalates only when its kind is in the node's
`escalate_on`; guard reasons outrank the others, injection first:

    suspected_injection > pii > policy_term > tool_approval / needs_person > off_topic
        > not_answered > partial_answer > low_confidence

`needs_person` is triage's verdict: the message is in a category the policy's
`triage_escalate` lists (a charge dispute, a security incident, ...), which a person handles
whatever the answer's confidence. `not_answered` and `partial_answer` are the verifier's
verdict on a drafted answer (it answers none, or only part, of the question from the
passages it cites).

PII a drafted answer quotes verbatim from the passages it cites (a help-centre article's
contact address, say) was published by the product, not given by the customer, so
`unquoted_pii` drops it before the verdict; PII in the customer's own question still counts.
"""

from collections.abc import Iterable, Mapping

from pydantic import JsonValue

from keel.errors import KeelUserError
from keel.schemas.guards import GuardFinding
from keel.schemas.model import Verdict
from keel.schemas.policy import DEFAULT_QUEUE, EscalationSettings, GuardKind, QueueSpec, RunPolicy
from keel.schemas.retrieval import Passage
from keel.schemas.reviews import PendingReview, ReviewReason
from keel.schemas.tools import ToolInfo

__all__ = [
    "INJECTION_FLAG",
    "check_policy",
    "guard_reason",
    "is_low_risk",
    "needs_approval",
    "needs_person",
    "node_threshold",
    "passage_findings",
    "queue_for",
    "queue_spec",
    "result_findings",
    "support_reason",
    "unquoted_pii",
]

_GUARD_PRIORITY: tuple[GuardKind, ...] = ("suspected_injection", "pii", "policy_term")
_VERDICT_REASONS: dict[Verdict, ReviewReason] = {
    "not_answered": "not_answered",
    "partial": "partial_answer",
}

INJECTION_FLAG = "suspected_injection"
"""The flag retrieval puts on a passage that reads like instructions to the model."""


def node_threshold(policy: RunPolicy, node: str) -> float:
    """The confidence below which `node` escalates."""
    own = policy.nodes.get(node)
    return policy.threshold if own is None or own.threshold is None else own.threshold


def guard_reason(
    policy: RunPolicy, node: str, findings: Iterable[GuardFinding]
) -> ReviewReason | None:
    """The guard verdict that escalates at `node`, the most serious first, or None."""
    own = policy.nodes.get(node)
    escalating = set(
        policy.escalate_on if own is None or own.escalate_on is None else own.escalate_on
    )
    kinds = {f.kind for f in findings} & escalating
    return next((kind for kind in _GUARD_PRIORITY if kind in kinds), None)


def needs_person(policy: RunPolicy, triage: str | None) -> bool:
    """Triage put the message in a category that must go to a person."""
    return triage is not None and triage in policy.triage_escalate


def support_reason(
    policy: RunPolicy,
    node: str,
    *,
    off_topic: bool,
    confidence: float,
    cited: bool,
    findings: Iterable[GuardFinding],
    verdict: Verdict | None = None,
    triage: str | None = None,
    score: float | None = None,
) -> ReviewReason | None:
    """Why a drafted answer must be reviewed before the customer sees it, or None.

    `verdict` is the verifier's (None when the run had no verifier). With a combined
    `score` (the policy's `ScoreModel`), the score meets the threshold instead of
    `confidence`, and the verdict is one of its signals rather than a rule: an answer it
    judged partial may still go out when the rest of its evidence is strong, and one that
    escalates says the verdict as its reason.
    """
    guarded = guard_reason(policy, node, findings)
    if guarded is not None:
        return guarded
    if needs_person(policy, triage):
        return "needs_person"
    if off_topic:
        return "off_topic"
    judged = _VERDICT_REASONS.get(verdict) if verdict is not None else None
    if score is None and judged is not None:
        return judged
    decided_on = confidence if score is None else score
    if decided_on < node_threshold(policy, node) or not cited:
        return judged or "low_confidence"
    return None


def unquoted_pii(
    findings: Iterable[GuardFinding], field: str, text: str, sources: Iterable[str]
) -> list[GuardFinding]:
    """`findings` without the PII in `field` (whose text is `text`) quoted from `sources`."""
    published = list(sources)

    def quoted(f: GuardFinding) -> bool:
        if f.kind != "pii" or f.field != field or f.start is None or f.end is None:
            return False
        value = text[f.start : f.end]
        return bool(value) and any(value in source for source in published)

    return [f for f in findings if not quoted(f)]


def needs_approval(policy: RunPolicy, tool: ToolInfo | None) -> bool:
    """A call of `tool` waits for a person: the tool says so, or the policy does."""
    return tool is not None and (tool.requires_approval or tool.name in policy.approve_tools)


def queue_for(policy: RunPolicy, reason: ReviewReason) -> str:
    """The queue a review with `reason` lands in: by reason, else the agent's."""
    return policy.reason_queues.get(reason, policy.queue)


def queue_spec(policy: RunPolicy, queue: str) -> QueueSpec:
    """The SLA and deadline path of `queue`."""
    return policy.queues.get(queue) or policy.queues.get(DEFAULT_QUEUE) or QueueSpec()


def is_low_risk(review: PendingReview, spec: QueueSpec) -> bool:
    """Safe to approve unseen: an answer (no tool call), no finding, confident enough."""
    return (
        review.tool_call is None
        and not review.findings
        and review.reason in ("low_confidence", "off_topic")
        and (review.confidence or 0.0) >= spec.low_risk_confidence
    )


def passage_findings(passages: Iterable[Passage], field: str = "passage") -> list[GuardFinding]:
    """An injection finding for every passage retrieval flagged."""
    return [
        GuardFinding(kind="suspected_injection", field=f"{field}:{p.id}", label=INJECTION_FLAG)
        for p in passages
        if INJECTION_FLAG in (getattr(p, "flags", None) or ())
    ]


def result_findings(result: JsonValue, field: str) -> list[GuardFinding]:
    """Injection findings in a tool's result: any object in it flagged by retrieval."""
    found: list[GuardFinding] = []
    pending: list[JsonValue] = [result]
    while pending:
        value = pending.pop()
        if isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, dict):
            flags = value.get("flags")
            if isinstance(flags, list) and INJECTION_FLAG in flags:
                label = value.get("id")
                where = f"{field}:{label}" if isinstance(label, str) else field
                found.append(
                    GuardFinding(kind="suspected_injection", field=where, label=INJECTION_FLAG)
                )
            pending.extend(value.values())
    return found


def check_policy(
    escalation: EscalationSettings, graphs: Mapping[str, Iterable[str]], tools: Iterable[str]
) -> None:
    """Refuse a policy that names an agent, a node or a tool that does not exist.

    Args:
        escalation: The configured policy.
        graphs: Each agent's node names.
        tools: Every tool's name.

    Raises:
        KeelUserError: Naming the first bad key.
    """
    known_tools = set(tools)
    for agent, own in escalation.agents.items():
        if agent not in graphs:
            raise KeelUserError(
                f"escalation.agents.{agent}: no such agent; agents: {', '.join(sorted(graphs))}"
            )
        nodes = set(graphs[agent])
        for node in own.nodes:
            if node not in nodes:
                raise KeelUserError(
                    f"escalation.agents.{agent}.nodes.{node}: no such node; "
                    f"nodes: {', '.join(sorted(nodes))}"
                )
        for index, tool in enumerate(own.approve_tools):
            if tool not in known_tools:
                raise KeelUserError(
                    f"escalation.agents.{agent}.approve_tools.{index}: no tool {tool!r}; "
                    f"tools: {', '.join(sorted(known_tools))}"
                )
