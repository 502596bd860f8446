"""Human review: what a graph asks a person, and what the person decides.

Reviews are of two kinds. An *escalation* holds a run until a person decides. An *audit*
is an answer already sent without review, sampled (with a known probability) to be graded
correct or wrong after the fact; its grade is a label, never a decision of the run.

A review is bound to the exact action it would let happen: `action_hash` is the SHA-256 of
the canonical JSON of the review id and the proposed answer or tool call. A decision
carries the hash it was made on, so it can never approve something else.
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, Field, JsonValue, model_validator

from keel.schemas.guards import GuardFinding
from keel.schemas.model import ToolCall, Verdict
from keel.schemas.policy import ExpiryPath, ReviewReason
from keel.schemas.retrieval import Passage
from keel.schemas.scoring import Signals

__all__ = [
    "CLAIM_REVIEW",
    "CLOSE_REVIEW",
    "MOVE_REVIEW",
    "OPEN_AUDIT",
    "OPEN_REVIEW",
    "AuditSample",
    "Citation",
    "Claim",
    "ClaimInput",
    "ClaimRecord",
    "ClaimRequest",
    "CloseReviewInput",
    "DecisionInput",
    "DecisionRequest",
    "Grade",
    "GradeRequest",
    "MoveReviewInput",
    "PendingReview",
    "ReleaseInput",
    "ReviewDecision",
    "ReviewKind",
    "ReviewList",
    "ReviewReason",
    "ReviewRequest",
    "ReviewStatus",
    "ReviewView",
    "Verification",
    "action_hash",
]

ReviewStatus = Literal[
    "pending", "approved", "edited", "rejected", "expired", "cancelled", "graded"
]
ReviewKind = Literal["escalation", "audit"]
"""`escalation`: a run waits on it; `audit`: a sent answer sampled to be graded."""
Grade = Literal["correct", "wrong"]
"""An audit's grade: was the answer sent without review fit to send?"""

_HASH = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the pending action.")


class Citation(BaseModel):
    """A passage an answer relies on."""

    passage_id: str
    title: str


def _passage_id(evidence: Passage | Citation) -> str:
    return evidence.id if isinstance(evidence, Passage) else evidence.passage_id


class Verification(BaseModel):
    """The verifier's word on a drafted answer: its verdict and what it trimmed away."""

    verdict: Verdict
    removed: list[str] = Field(
        default_factory=list, description="Sentences dropped: unsupported or off the question."
    )
    missing: str = Field(default="", description="What the question asks that is not answered.")
    sentences: int = Field(default=0, ge=0, description="Sentences the draft had when judged.")


class ReviewRequest(BaseModel):
    """What a graph node hands to `interrupt()`: the proposed action and its evidence."""

    reason: ReviewReason
    question: str
    proposed_answer: str
    citations: list[Citation] = Field(default_factory=list[Citation])
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    cost_usd: float = Field(default=0.0, ge=0.0, description="The run's model spend so far.")
    passages: list[Passage] = Field(default_factory=list[Passage])
    tool_call: ToolCall | None = Field(default=None, description="The call waiting for approval.")
    tool_parameters: dict[str, JsonValue] | None = Field(
        default=None, description="The tool's JSON schema: an edit's arguments must fit it."
    )
    node: str | None = Field(default=None, description="The graph node that escalated.")
    findings: list[GuardFinding] = Field(
        default_factory=list[GuardFinding], description="What the guards flagged, as evidence."
    )
    verification: Verification | None = Field(
        default=None, description="The verifier's verdict on the proposed answer."
    )
    triage: str | None = Field(
        default=None, description="The triage category of the message (`needs_person`: why)."
    )
    signals: Signals | None = Field(
        default=None, description="The evidence `confidence` combines, under a score model."
    )


def action_hash(review_id: str, request: ReviewRequest) -> str:
    """SHA-256 of the canonical JSON of the exact action `request` would let happen."""
    call = request.tool_call
    action = {
        "review_id": review_id,
        "proposed_answer": request.proposed_answer,
        "tool_call": None if call is None else {"name": call.name, "arguments": call.arguments},
    }
    canonical = json.dumps(action, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Claim(BaseModel):
    """Who holds a review, until when (workflow time)."""

    claimant: str
    expires_at: datetime


class PendingReview(ReviewRequest):
    """A review the workflow has opened and is waiting on."""

    review_id: str
    run_id: str
    agent: str
    opened_at: datetime
    deadline: datetime
    queue: str = "default"
    action_hash: str = ""
    claim: Claim | None = None


class ReviewDecision(BaseModel):
    """A reviewer's decision: approve the proposed action, change it, or reject it.

    An edit replaces a proposed answer (`answer`) or a tool call's arguments (`arguments`).
    An edited answer may also choose what it cites (`citations`).
    """

    action: Literal["approve", "edit", "reject"]
    answer: str | None = Field(default=None, min_length=1, max_length=20_000)
    arguments: dict[str, JsonValue] | None = None
    citations: list[str] | None = Field(
        default=None,
        max_length=50,
        description="With an edited answer: the ids of the review's passages it cites "
        "(`[]` cites none); unset keeps the proposed citations.",
    )
    comment: str | None = Field(default=None, max_length=4_000)
    reviewer: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _edits_carry_one_replacement(self) -> Self:
        replacements = (self.answer is not None) + (self.arguments is not None)
        if self.action == "edit" and replacements != 1:
            raise ValueError("an 'edit' decision needs the edited 'answer' or 'arguments'")
        if self.action != "edit" and replacements:
            raise ValueError("only an 'edit' decision carries an 'answer' or 'arguments'")
        if self.citations is not None and self.answer is None:
            raise ValueError("'citations' go with an edited 'answer'")
        return self

    def cited(self, evidence: Sequence[Passage | Citation]) -> list[Citation] | None:
        """The edited answer's citations, titled from `evidence`; None when it chose none."""
        if self.citations is None:
            return None
        titles = {_passage_id(e): e.title for e in evidence}
        return [Citation(passage_id=c, title=titles[c]) for c in self.citations if c in titles]


class DecisionRequest(ReviewDecision):
    """`POST /v1/reviews/{id}/decision`: a decision on the action whose hash it names."""

    action_hash: str = _HASH


class DecisionInput(ReviewDecision):
    """The `decide` Update's argument: a decision for one review, bound to its action."""

    review_id: str
    action_hash: str | None = Field(default=None, description="Refused unless it is current.")
    reviewer_id: str | None = Field(
        default=None, description="The deciding principal's id, set by the API from the caller."
    )
    reviewer_key: str | None = Field(
        default=None, description="The id of the key the principal decided with (the API's)."
    )

    @property
    def decider(self) -> str | None:
        """Who decides, as claims name them: the principal's id, else the name given (open)."""
        return self.reviewer_id or self.reviewer


class ClaimRequest(BaseModel):
    """`POST /v1/reviews/{id}/claim`: take a review for a while."""

    reviewer: str | None = Field(
        default=None, min_length=1, max_length=200, description="Who claims (open mode)."
    )
    lease_s: float | None = Field(
        default=None, gt=0, description="How long; at most (and by default) the configured lease."
    )


class ClaimInput(BaseModel):
    """The `claim` Update's argument."""

    review_id: str
    claimant: str = Field(min_length=1, max_length=200)
    lease_s: float = Field(gt=0)
    key: str | None = Field(default=None, description="The claimant's key (the API's).")


class ReleaseInput(BaseModel):
    """The `release` Update's argument: give a claimed review back to its queue."""

    review_id: str
    claimant: str | None
    key: str | None = Field(default=None, description="The claimant's key (the API's).")


class ClaimRecord(BaseModel):
    """Activity input: show a review's claim (or its release) on its queue row."""

    review_id: str
    claimant: str | None
    key: str | None = Field(default=None, description="The key that claimed or released it.")
    expires_at: datetime | None
    version: int = Field(ge=1, description="Only a newer record overwrites the row.")


class MoveReviewInput(BaseModel):
    """Activity input: a review passed its deadline and moves to another queue."""

    review_id: str
    queue: str
    deadline: datetime
    version: int = Field(ge=1, description="Claim records older than the move are dropped.")


class CloseReviewInput(BaseModel):
    """Activity input: mark a review row decided."""

    review_id: str
    status: ReviewStatus
    answer: str | None = None
    arguments: dict[str, JsonValue] | None = None
    citations: list[Citation] | None = Field(
        default=None, description="What the edited answer cites, when the reviewer chose."
    )
    comment: str | None = None
    reviewer: str | None = None
    reviewer_id: str | None = Field(default=None, description="The deciding principal's id.")
    reviewer_key: str | None = Field(default=None, description="The key it decided with.")
    decided_at: datetime
    deadline_path: ExpiryPath | None = Field(
        default=None, description="Set when the deadline, not a person, decided."
    )


class AuditSample(BaseModel):
    """Activity input: an answer sent without review, sampled into the audit queue."""

    review_id: str = Field(description="The run's id + `.audit`: a retried write finds it.")
    run_id: str
    agent: str
    input: dict[str, JsonValue] = Field(description="The run's input (its question).")
    answer: str
    citations: list[Citation] = Field(default_factory=list[Citation])
    confidence: float = Field(ge=0.0, le=1.0)
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    sampling_rate: float = Field(gt=0.0, le=1.0, description="The chance it was sampled.")
    queue: str
    opened_at: datetime
    deadline: datetime
    signals: Signals | None = Field(default=None, description="The evidence it was sent on.")


class GradeRequest(BaseModel):
    """`POST /v1/reviews/{id}/grade`: the answer sent without review was correct, or wrong."""

    grade: Grade
    note: str | None = Field(default=None, max_length=4_000)
    reviewer: str | None = Field(
        default=None, min_length=1, max_length=200, description="Who grades (open mode)."
    )


class ReviewView(BaseModel):
    """A review as the REST API shows it: the pending action, its evidence, its decision."""

    id: str
    run_id: str
    agent: str
    kind: ReviewKind = "escalation"
    queue: str
    status: ReviewStatus
    reason: ReviewReason
    node: str | None = None
    triage: str | None = Field(default=None, description="The message's triage category.")
    question: str
    proposed_answer: str
    citations: list[Citation]
    passages: list[Passage] = Field(default_factory=list[Passage])
    findings: list[GuardFinding] = Field(default_factory=list[GuardFinding])
    verification: Verification | None = None
    signals: Signals | None = Field(default=None, description="The evidence `confidence` rests on.")
    confidence: float | None
    threshold: float | None
    cost_usd: float
    tool_call: ToolCall | None = None
    tool_parameters: dict[str, JsonValue] | None = None
    action_hash: str = Field(description="Send it back with the decision.")
    claim: Claim | None = Field(default=None, description="The current, unexpired claim.")
    answer: str | None = Field(default=None, description="The edited answer, if any.")
    edited_citations: list[Citation] | None = Field(
        default=None, description="What the edited answer cites, when the reviewer chose."
    )
    arguments: dict[str, JsonValue] | None = Field(
        default=None, description="The edited tool arguments, if any."
    )
    comment: str | None = None
    reviewer: str | None = None
    created_at: datetime
    deadline: datetime
    deadline_path: ExpiryPath | None = Field(
        default=None, description="What the deadline did: moved it here, approved, rejected."
    )
    decided_at: datetime | None = None
    sampling_rate: float | None = Field(
        default=None, description="An audit's chance of being sampled (its label weighs 1/p)."
    )
    grade: Grade | None = Field(default=None, description="An audit's grade, once graded.")
    ui_url: str


class ReviewList(BaseModel):
    """A page of reviews; `next` is the address of the next page, if there is one."""

    reviews: list[ReviewView]
    next_cursor: str | None = None
    next: str | None = None


OPEN_REVIEW = "review.open"
"""Activity type that writes a pending review into the queue."""
CLOSE_REVIEW = "review.close"
"""Activity type that records a review's decision in the queue."""
CLAIM_REVIEW = "review.claim"
"""Activity type that shows a review's claim on its queue row."""
MOVE_REVIEW = "review.move"
"""Activity type that moves a review past its deadline to another queue."""
OPEN_AUDIT = "review.open_audit"
"""Activity type that writes an audit sample (`AuditSample`) into the audit queue."""
