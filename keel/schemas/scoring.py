"""One score per run: the evidence a drafted answer has, combined by a fitted logistic model.

`Signals` is what a node knows when it decides whether a person must look: the answer's own
confidence (lexical coverage for `local`, the model's own figure for a provider), the
verifier's verdict and how much of the draft it dropped, how sure triage was that the
message needs nobody, and how clearly retrieval found something (its best passage's score
and that score's lead over the next). `ScoreModel` turns them into one number in [0, 1]:

    score = 1 / (1 + exp(-(intercept + Σ weights[f] · feature_f(signals))))

with the features of `FEATURES`. `keel calibrate AGENT --labelled FILE --fit` fits the
weights on the labelled runs of the file's `tune` split (`keel.score_fit`) and certifies a
threshold on the others; an agent policy that carries a model (`[escalation.agents.NAME.score]`)
decides on the score instead of the answer's confidence.
"""

import math
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from keel.schemas.model import Verdict

__all__ = ["FEATURES", "Feature", "ScoreModel", "Signals"]

Feature = Literal["confidence", "answered", "partial", "removed", "triage", "top_score", "margin"]
FEATURES: tuple[Feature, ...] = get_args(Feature)
"""What a score model weighs, each a function of `Signals` (`Signals.features`)."""


class Signals(BaseModel):
    """The evidence on one drafted answer at the node that decides on it."""

    confidence: float = Field(ge=0.0, le=1.0, description="The answer's own confidence.")
    verdict: Verdict | None = Field(default=None, description="The verifier's, if it ran.")
    removed: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of the draft's sentences it dropped."
    )
    triage: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Triage's probability for the label it chose."
    )
    top_score: float = Field(default=0.0, ge=0.0, description="The best passage's search score.")
    margin: float = Field(
        default=0.0, ge=0.0, le=1.0, description="The best score's lead over the next, relative."
    )

    def features(self) -> dict[Feature, float]:
        """The features a `ScoreModel` weighs; a signal that is missing counts as neutral."""
        return {
            "confidence": self.confidence,
            "answered": 1.0 if self.verdict == "answered" else 0.0,
            "partial": 1.0 if self.verdict == "partial" else 0.0,
            "removed": self.removed,
            "triage": 1.0 if self.triage is None else self.triage,
            "top_score": math.log1p(self.top_score),
            "margin": self.margin,
        }


class ScoreModel(BaseModel):
    """A logistic model over `Signals`: the probability that the answer is fit to send."""

    model_config = ConfigDict(extra="forbid")

    intercept: float
    weights: dict[Feature, float] = Field(description="A feature left out weighs 0.")
    fitted_on: int = Field(default=0, ge=0, description="Labelled runs it was fitted on.")

    @model_validator(mode="after")
    def _finite(self) -> "ScoreModel":
        if not all(math.isfinite(w) for w in (self.intercept, *self.weights.values())):
            raise ValueError("a score model's intercept and weights must be finite numbers")
        return self

    def score(self, signals: Signals) -> float:
        """The combined score of `signals`, rounded to 3 places as confidences are."""
        features = signals.features()
        z = self.intercept + sum(w * features[f] for f, w in self.weights.items())
        return round(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))), 3)
