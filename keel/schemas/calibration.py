"""Calibration: labelled questions, what a run did with each, and how escalation scored."""

from typing import Literal

from pydantic import BaseModel, Field, computed_field

from keel.schemas.policy import ReviewReason
from keel.schemas.routing import Ledger
from keel.schemas.scoring import Signals

__all__ = [
    "LabelledQuestion",
    "LabelledRun",
    "Observation",
    "RiskControl",
    "Scores",
    "Split",
    "WrongSentEstimate",
]

Split = Literal["tune", "test", "holdout"]
"""Part of a labelled set: tune on `tune`; report `test` (older sets call it `holdout`)."""


class LabelledQuestion(BaseModel):
    """One line of a labelled set: a question, and whether the knowledge base answers it.

    `key_facts` lists the facts a right answer holds, each as alternative wordings: an
    answer holds a fact when one alternative is a case-insensitive substring of it.
    """

    id: str | None = None
    question: str = Field(min_length=1)
    answerable: bool = Field(description="True when the help centre holds the answer.")
    category: str | None = Field(default=None, description="Kind of question, for reports.")
    article: str | None = Field(default=None, description="The article that answers it.")
    key_facts: list[list[str]] = Field(
        default_factory=list[list[str]],
        description="Facts a right answer holds; each is a list of alternative wordings.",
    )
    split: Split | None = Field(
        default=None, description="Tune a heuristic on one part, report the other unseen."
    )


class Observation(BaseModel):
    """One escalation decision and its ground truth.

    `needed_person` is the label: True when the run should have gone to a reviewer.
    `forced` is True when the run escalated for a reason no confidence threshold changes
    (off-topic, a guard, no citations), so it escalates whatever the threshold.
    `weight` is 1 / the probability that the run was labelled (an audit sample graded with
    probability p weighs 1/p), so weighted labels stand for all runs.
    """

    confidence: float = Field(ge=0.0, le=1.0)
    needed_person: bool
    forced: bool = False
    weight: float = Field(default=1.0, gt=0.0)
    split: Split | None = None

    def escalates(self, threshold: float) -> bool:
        """Whether this run escalates at `threshold`."""
        return self.forced or self.confidence < threshold


class LabelledRun(BaseModel):
    """What a real run did with one labelled question (`cli.labelled.run_labelled`).

    `escalated` says whether it asked a person (it was then observed and ended); `forced`
    whether it would have at any threshold (see `Observation`). `answer` is the answer sent,
    or the one proposed to the reviewer. `latency_s` is the run's wall time from its start
    to its end or to the review it opened; `ledger` its model calls up to then.
    """

    question: LabelledQuestion
    confidence: float = Field(ge=0.0, le=1.0)
    escalated: bool
    forced: bool
    reason: ReviewReason | None = Field(default=None, description="Why it escalated.")
    answer: str | None = None
    latency_s: float = Field(ge=0.0)
    ledger: Ledger = Field(default_factory=Ledger)
    signals: Signals | None = Field(default=None, description="The evidence it decided on.")

    def observation(self) -> Observation:
        """The escalation decision and its label."""
        return Observation(
            confidence=self.confidence,
            needed_person=not self.question.answerable,
            forced=self.forced,
            split=self.question.split,
        )


class Scores(BaseModel):
    """Escalation at one threshold, scored against labels (escalating is the positive)."""

    threshold: float
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @computed_field
    @property
    def precision(self) -> float | None:
        """Of the runs that escalated, the share that needed a person."""
        escalated = self.true_positives + self.false_positives
        return self.true_positives / escalated if escalated else None

    @computed_field
    @property
    def recall(self) -> float | None:
        """Of the runs that needed a person, the share that escalated."""
        needed = self.true_positives + self.false_negatives
        return self.true_positives / needed if needed else None


class RiskControl(BaseModel):
    """A threshold certified to keep wrong answers sent unreviewed ≤ α with probability ≥ 1−δ.

    `status` says what the labels allow: `certified` (a threshold and its figures),
    `none_certified` (no threshold keeps the promise: escalate everything) or
    `too_few_labels` (fewer than `min_labels`; `more_labels_needed` says how many more).
    Rates are shares of all runs; `threshold` is None whenever nothing is certified.
    """

    alpha: float = Field(description="Largest share of runs sent unreviewed with a wrong answer.")
    delta: float = Field(description="Allowed probability that the promise fails.")
    labels: int = Field(description="Labelled runs used.")
    effective_labels: float = Field(description="Kish's effective sample size; n unweighted.")
    min_labels: int = Field(description="The fewest labels that could certify a threshold.")
    more_labels_needed: int = 0
    status: Literal["certified", "none_certified", "too_few_labels"]
    threshold: float | None = Field(default=None, description="Escalate below this confidence.")
    wrong_sent: float | None = Field(default=None, description="Estimated wrong-sent rate.")
    wrong_sent_upper: float | None = Field(
        default=None, description="Clopper–Pearson upper bound (confidence 1−δ) on that rate."
    )
    answered: float | None = Field(default=None, description="Share answered without review.")


class WrongSentEstimate(BaseModel):
    """`GET /v1/agents/{agent}/quality`: how often an answer sent without review is wrong.

    Estimated from graded audit samples (answers sent unreviewed, sampled with a known
    probability and graded afterwards): the share graded wrong, weighted by 1 / sampling
    probability, with a two-sided Clopper–Pearson interval. Rates are None until an audit
    of the agent is graded.
    """

    agent: str
    audit_rate: float | None = Field(
        default=None, description="The share of unreviewed answers sampled now (configured)."
    )
    graded: int = Field(description="Audits graded.")
    wrong: int = Field(description="Of them, graded wrong.")
    effective_graded: float = Field(description="Kish's effective sample size; n unweighted.")
    confidence_level: float = Field(description="Of the interval.")
    wrong_sent_rate: float | None = Field(
        default=None, description="Share of answers sent without review that were wrong."
    )
    lower: float | None = Field(default=None, description="Lower end of the interval.")
    upper: float | None = Field(default=None, description="Upper end of the interval.")
