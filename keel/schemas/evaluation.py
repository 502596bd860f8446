"""Evaluation: how an agent did on a labelled set (`keel eval`), per category and overall."""

from pydantic import BaseModel, Field, computed_field

from keel.schemas.calibration import Scores

__all__ = [
    "CurvePoint",
    "Evaluation",
    "GroupScores",
    "Interval",
    "ModelCost",
    "QuestionResult",
    "RouteCost",
]


class Interval(BaseModel):
    """A two-sided confidence interval on a rate."""

    low: float = Field(ge=0.0, le=1.0)
    high: float = Field(ge=0.0, le=1.0)
    confidence: float = Field(gt=0.0, lt=1.0)


class GroupScores(BaseModel):
    """One category (or all questions): escalation, and the answers sent without review.

    An answer sent without review is *wrong* when its question needed a person, or when it
    misses one of the question's key facts (*incomplete*).
    """

    group: str
    questions: int
    escalation: Scores = Field(description="Escalating is the positive.")
    sent: int = Field(description="Answered without review.")
    sent_wrong: int = Field(description="Sent, and wrong or incomplete.")
    sent_incomplete: int = Field(description="Sent to an answerable question, missing a fact.")
    wrong_sent_interval: Interval | None = Field(
        default=None, description="Clopper–Pearson interval on the wrong-sent rate."
    )
    answerable: int
    answerable_sent: int

    @computed_field
    @property
    def wrong_sent_rate(self) -> float | None:
        """Of the answers sent without review, the share wrong or incomplete."""
        return self.sent_wrong / self.sent if self.sent else None

    @computed_field
    @property
    def answered(self) -> float | None:
        """The share of questions answered without review."""
        return self.sent / self.questions if self.questions else None

    @computed_field
    @property
    def answerable_answered(self) -> float | None:
        """The share of answerable questions answered without review."""
        return self.answerable_sent / self.answerable if self.answerable else None


class RouteCost(BaseModel):
    """Cost and wall time of the runs that took one route: answered, or escalated (why)."""

    route: str
    runs: int
    cost_usd_mean: float
    cost_usd_total: float
    latency_s_mean: float
    latency_s_p50: float
    latency_s_p95: float


class ModelCost(BaseModel):
    """The calls answered by one provider's model, over all runs."""

    provider: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class CurvePoint(BaseModel):
    """Risk against coverage at one confidence threshold."""

    threshold: float
    answered: float = Field(description="Share of questions answered without review.")
    wrong_sent: float | None = Field(description="Share of those answers wrong or incomplete.")


class QuestionResult(BaseModel):
    """What the run did with one question, and whether sending its answer was wrong."""

    id: str | None
    category: str | None
    answerable: bool
    escalated: bool
    reason: str | None
    confidence: float
    wrong: bool = Field(description="Its answer, sent unreviewed, would be wrong or incomplete.")
    answer: str | None
    latency_s: float


class Evaluation(BaseModel):
    """One configuration of an agent run over a labelled set."""

    config: str = Field(description="Which settings: 'configured' or a settings file.")
    agent: str
    labelled: str
    split: str | None = None
    threshold: float = Field(description="The agent's confidence threshold in these settings.")
    groups: list[GroupScores] = Field(description="All questions first, then each category.")
    routes: list[RouteCost]
    models: list[ModelCost]
    curve: list[CurvePoint] = Field(description="From the highest threshold to the lowest.")
    questions: list[QuestionResult] = Field(description="Each question, in the file's order.")
