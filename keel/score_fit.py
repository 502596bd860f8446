"""Fit a `ScoreModel`: logistic regression of "fit to send" on a run's `Signals`.

The examples are labelled runs whose escalation the score decides (a guard, triage or a
tool approval escalates whatever the score): their signals, and whether their answer was
fit to send unreviewed (the question needed nobody and the answer holds its key facts).
The model maximises the log-likelihood with an L2 penalty `L2` on the weights (not the
intercept), by Newton's method from zero: the penalised problem is strictly convex, so it
converges to the one optimum in a few steps, deterministically. A feature with no spread
among the examples gets weight 0 rather than an arbitrary one.

`MIN_EXAMPLES` is a floor: fewer examples, or examples of one class only, fit nothing.

`keel calibrate --fit` fits on a labelled set's `tune` split (`fit_on_tune`) and certifies
a threshold on the other runs, each rescored by the model (`rescored`): a threshold
certified on the runs the model was fitted on would promise more than it keeps, so a set
with nothing but one split is cut in two, one half to fit and one to certify.
"""

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from keel.errors import KeelUserError
from keel.evaluation import risk_observation, wrong_answer
from keel.schemas.calibration import LabelledRun, Observation
from keel.schemas.policy import SCORE_REASONS
from keel.schemas.scoring import FEATURES, Feature, ScoreModel, Signals
from keel.tables import LabelRow

__all__ = [
    "L2",
    "MIN_EXAMPLES",
    "FittedScore",
    "decided_by_score",
    "fit_on_tune",
    "fit_on_verdicts",
    "fit_score",
    "rescored",
]

L2 = 1.0
"""The penalty on the squared weights: strong enough that a few dozen runs do not overfit."""
MIN_EXAMPLES = 30
"""Fewer labelled runs than this fit no model."""
_STEPS = 50
_TOLERANCE = 1e-10


def fit_score(
    examples: Sequence[tuple[Signals, bool]], weights: Sequence[float] | None = None
) -> ScoreModel:
    """The score model that best predicts, from each run's signals, that it was fit to send.

    Args:
        examples: Each run's signals and whether its answer was fit to send unreviewed.
        weights: Each example's weight (1 / the probability it was labelled); 1 if None.

    Raises:
        KeelUserError: Fewer than `MIN_EXAMPLES` examples, or all of one class.

    """
    if len(examples) < MIN_EXAMPLES:
        raise KeelUserError(
            f"a score model needs at least {MIN_EXAMPLES} labelled runs the score decides; "
            f"there are {len(examples)}"
        )
    fit = np.array([ok for _, ok in examples], dtype=np.float64)
    if fit.min() == fit.max():
        kind = "fit to send" if fit[0] else "not fit to send"
        raise KeelUserError(f"every labelled run the score decides was {kind}: nothing to learn")
    rows = [s.features() for s, _ in examples]
    x = np.array([[1.0, *(row[f] for f in FEATURES)] for row in rows], dtype=np.float64)
    varied = np.r_[True, x[:, 1:].std(axis=0) > 0]
    x = x[:, varied]
    # A weight counts as that many copies of its run: 1/p stands for the runs not sampled.
    copies = np.array([1.0] * len(examples) if weights is None else weights, dtype=np.float64)
    penalty = np.full(x.shape[1], L2)
    penalty[0] = 0.0
    w = np.zeros(x.shape[1])
    for _ in range(_STEPS):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (copies * (p - fit)) + penalty * w
        curvature = (x.T * (copies * p * (1.0 - p))) @ x
        hessian = curvature + np.diag(penalty) + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(step @ step) < _TOLERANCE:
            break
    fitted = iter(w[1:].tolist())
    by_feature: dict[Feature, float] = {
        f: round(next(fitted), 4) if kept else 0.0
        for f, kept in zip(FEATURES, varied[1:], strict=True)
    }
    return ScoreModel(intercept=round(float(w[0]), 4), weights=by_feature, fitted_on=len(examples))


class FittedScore(BaseModel):
    """A score model fitted on a labelled set's runs, and what it was fitted and certified on."""

    model: ScoreModel
    source: str = Field(description="Which runs it was fitted on, in words.")
    certify: list[LabelledRun] = Field(description="The runs its threshold is certified on.")


def decided_by_score(run: LabelledRun) -> bool:
    """Whether a score could have changed what `run` did (no guard, triage or rule forced it)."""
    return run.signals is not None and (not run.escalated or run.reason in SCORE_REASONS)


def fit_on_tune(runs: Sequence[LabelledRun]) -> FittedScore:
    """Fit on the `tune` split's runs that the score decides; certify on the other runs.

    A set with no other split (or no split at all) is cut in two: every other run fits
    and the rest certify, so no threshold is certified on the runs the model learnt from.

    Raises:
        KeelUserError: No run carries signals (the agent has no score), or too few examples.

    """
    if not any(r.signals is not None for r in runs):
        raise KeelUserError("this agent's runs report no signals: it has no score to fit")
    tune = [r for r in runs if r.question.split == "tune"]
    held = [r for r in runs if r.question.split != "tune"]
    source = "the tune split"
    if not tune or not held:
        tune, held = list(runs[::2]), list(runs[1::2])
        source = "every other run (the rest certify)"
    examples = [
        (r.signals, not wrong_answer(r.question, r.answer))
        for r in tune
        if r.signals is not None and decided_by_score(r)
    ]
    return FittedScore(model=fit_score(examples), source=source, certify=held)


def fit_on_verdicts(labels: Sequence[LabelRow]) -> tuple[ScoreModel, list[Observation]]:
    """Fit on every other reviewer label that kept its run's signals; certify on the rest.

    The examples are the labels a score decides: graded audits (weighted 1 / their sampling
    probability) and reviews opened on confidence or on the verifier's verdict. The other
    half, each rescored by the model, is what a threshold is certified on; labels a rule
    decided stay forced there.

    Raises:
        KeelUserError: Too few labels with signals, or all of one kind.

    """
    signed = [label for label in labels if label.signals is not None]
    fitting, certifying = signed[::2], signed[1::2]
    decided = [label for label in fitting if _score_decides(label)]
    model = fit_score(
        [(_signals(label), not label.needed_person) for label in decided],
        [label.weight for label in decided],
    )
    held = [
        Observation(
            confidence=model.score(_signals(label)),
            needed_person=label.needed_person,
            forced=not _score_decides(label),
            weight=label.weight,
        )
        for label in certifying
    ]
    return model, held


def _signals(label: LabelRow) -> Signals:
    return Signals.model_validate(label.signals)


def _score_decides(label: LabelRow) -> bool:
    return label.source == "audit" or label.reason in SCORE_REASONS


def rescored(run: LabelledRun, model: ScoreModel) -> Observation:
    """`run`'s risk observation had `model` decided it: its score, forced only by a rule."""
    observation = risk_observation(run)
    if run.signals is None or not decided_by_score(run):
        return observation.model_copy(update={"forced": True})
    return observation.model_copy(update={"confidence": model.score(run.signals), "forced": False})
