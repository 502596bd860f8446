"""Human review: what a graph asks a person, and what the person decides."""

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, Field, JsonValue, model_validator

from keel.schemas.model import ToolCall
from keel.schemas.retrieval import Passage

__all__ = [
    "CLOSE_REVIEW",
    "OPEN_REVIEW",
    "Citation",
    "CloseReviewInput",
    "DecisionInput",
    "PendingReview",
    "ReviewDecision",
    "ReviewList",
    "ReviewReason",
    "ReviewRequest",
    "ReviewStatus",
    "ReviewView",
]

ReviewReason = Literal["low_confidence", "off_topic", "budget", "tool_approval"]
ReviewStatus = Literal["pending", "approved", "edited", "rejected", "expired", "cancelled"]


class Citation(BaseModel):
    """A passage an answer relies on."""

    passage_id: str
    title: str


class ReviewRequest(BaseModel):
    """What a graph node hands to `interrupt()`: the proposed action and its evidence."""

    reason: ReviewReason
    question: str
    proposed_answer: str
    citations: list[Citation] = Field(default_factory=list)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    cost_usd: float = Field(default=0.0, ge=0.0, description="The run's model spend so far.")
    passages: list[Passage] = Field(default_factory=list)
    tool_call: ToolCall | None = Field(default=None, description="The call waiting for approval.")
    tool_parameters: dict[str, JsonValue] | None = Field(
        default=None, description="The tool's JSON schema: an edit's arguments must fit it."
    )


class PendingReview(ReviewRequest):
    """A review the workflow has opened and is waiting on."""

    review_id: str
    run_id: str
    agent: str
    opened_at: datetime
    deadline: datetime


class ReviewDecision(BaseModel):
    """A reviewer's decision: approve the proposed action, change it, or reject it.

    An edit replaces a proposed answer (`answer`) or a tool call's arguments (`arguments`).
    """

    action: Literal["approve", "edit", "reject"]
    answer: str | None = Field(default=None, min_length=1, max_length=20_000)
    arguments: dict[str, JsonValue] | None = None
    comment: str | None = Field(default=None, max_length=4_000)
    reviewer: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _edits_carry_one_replacement(self) -> Self:
        replacements = (self.answer is not None) + (self.arguments is not None)
        if self.action == "edit" and replacements != 1:
            raise ValueError("an 'edit' decision needs the edited 'answer' or 'arguments'")
        if self.action != "edit" and replacements:
            raise ValueError("only an 'edit' decision carries an 'answer' or 'arguments'")
        return self


class DecisionInput(ReviewDecision):
    """The `decide` Update's argument: a decision for one review."""

    review_id: str


class CloseReviewInput(BaseModel):
    """Activity input: mark a review row decided."""

    review_id: str
    status: ReviewStatus
    answer: str | None = None
    arguments: dict[str, JsonValue] | None = None
    comment: str | None = None
    reviewer: str | None = None
    decided_at: datetime


class ReviewView(BaseModel):
    """A review as the REST API shows it."""

    id: str
    run_id: str
    agent: str
    status: ReviewStatus
    reason: ReviewReason
    question: str
    proposed_answer: str
    citations: list[Citation]
    confidence: float | None
    threshold: float | None
    cost_usd: float
    tool_call: ToolCall | None = None
    answer: str | None = Field(default=None, description="The edited answer, if any.")
    arguments: dict[str, JsonValue] | None = Field(
        default=None, description="The edited tool arguments, if any."
    )
    comment: str | None = None
    reviewer: str | None = None
    created_at: datetime
    deadline: datetime
    decided_at: datetime | None = None
    ui_url: str


class ReviewList(BaseModel):
    """A page of reviews."""

    reviews: list[ReviewView]


OPEN_REVIEW = "review.open"
"""Activity type that writes a pending review into the queue."""
CLOSE_REVIEW = "review.close"
"""Activity type that records a review's decision in the queue."""
