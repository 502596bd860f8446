"""The combined score: its model, its fit, and the guarantee of a threshold certified for it."""

import math
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from keel.admission import run_policy
from keel.errors import KeelUserError
from keel.risk_control import control_risk_arrays
from keel.schemas.calibration import LabelledQuestion, LabelledRun, Split
from keel.schemas.model import Verdict
from keel.schemas.scoring import FEATURES, ScoreModel, Signals
from keel.score_fit import MIN_EXAMPLES, fit_on_tune, fit_on_verdicts, fit_score, rescored
from keel.settings import Settings
from keel.tables import LabelRow

pytestmark = pytest.mark.usefixtures("clean_env")

TRUE = ScoreModel(
    intercept=-3.0, weights={"confidence": 4.0, "answered": 1.5, "margin": 2.0, "triage": 0.0}
)
"""The model the simulated runs are drawn from."""


VERDICTS: tuple[Verdict, ...] = ("answered", "partial", "not_answered")


def _signals(rng: np.random.Generator) -> Signals:
    top = float(rng.uniform(0, 8))
    return Signals(
        confidence=float(rng.uniform()),
        verdict=VERDICTS[int(rng.integers(3))],
        removed=float(rng.uniform()),
        triage=float(rng.uniform(0.5, 1)),
        top_score=top,
        margin=float(rng.uniform()),
    )


def _draw(rng: np.random.Generator, n: int) -> list[tuple[Signals, bool]]:
    """`n` runs whose answer is fit to send with `TRUE`'s probability."""
    runs = [_signals(rng) for _ in range(n)]
    return [(s, bool(rng.uniform() < _exact(TRUE, s))) for s in runs]


def _exact(model: ScoreModel, signals: Signals) -> float:
    features = signals.features()
    z = model.intercept + sum(w * features[f] for f, w in model.weights.items())
    return 1 / (1 + math.exp(-z))


def test_the_score_is_a_logistic_model_of_the_signals() -> None:
    signals = Signals(confidence=0.5, verdict="answered", top_score=math.e - 1, margin=0.25)
    assert ScoreModel(intercept=0.0, weights={}).score(signals) == 0.5
    model = ScoreModel(intercept=-1.0, weights={"confidence": 2.0, "answered": 1.0, "top_score": 1})
    assert model.score(signals) == round(1 / (1 + math.exp(-(-1 + 1 + 1 + 1))), 3)
    # A signal the run does not have is neutral: no triage counts as sure.
    assert Signals(confidence=0).features()["triage"] == 1.0
    assert set(signals.features()) == set(FEATURES)
    with pytest.raises(ValidationError):
        ScoreModel(intercept=math.inf, weights={})
    with pytest.raises(ValidationError):
        ScoreModel.model_validate({"intercept": 0, "weights": {"length": 1.0}})


def test_an_agent_policy_carries_its_score_model_into_every_run() -> None:
    Path("keel.toml").write_text(
        "[escalation.agents.support]\nthreshold = 0.7\n"
        "[escalation.agents.support.score]\nintercept = -1.5\n"
        "weights = { confidence = 2.0, margin = 1.0 }\n",
        encoding="utf-8",
    )
    policy = run_policy(Settings(), "support")
    assert policy.threshold == 0.7
    assert policy.score == ScoreModel(intercept=-1.5, weights={"confidence": 2.0, "margin": 1.0})
    assert run_policy(Settings(), "assistant").score is None


def test_the_fit_recovers_the_model_the_runs_were_drawn_from() -> None:
    rng = np.random.default_rng(7)
    fitted = fit_score(_draw(rng, 4_000))
    assert fitted.fitted_on == 4_000
    for feature in FEATURES:
        want = TRUE.weights.get(feature, 0.0)
        assert abs(fitted.weights[feature] - want) < 0.45, (feature, fitted.weights)
    assert abs(fitted.intercept - TRUE.intercept) < 0.6
    # On fresh runs it ranks about as well as the truth does.
    fresh = _draw(rng, 2_000)
    assert _auc(fitted, fresh) > _auc(TRUE, fresh) - 0.01


def _auc(model: ScoreModel, runs: list[tuple[Signals, bool]]) -> float:
    good = [model.score(s) for s, ok in runs if ok]
    bad = [model.score(s) for s, ok in runs if not ok]
    wins = sum((g > b) + 0.5 * (g == b) for g in good for b in bad)
    return wins / (len(good) * len(bad))


def test_a_feature_with_no_spread_weighs_nothing_and_too_few_runs_fit_nothing() -> None:
    rng = np.random.default_rng(3)
    runs = [(s.model_copy(update={"removed": 0.0}), ok) for s, ok in _draw(rng, 200)]
    assert fit_score(runs).weights["removed"] == 0.0
    with pytest.raises(KeelUserError, match=f"at least {MIN_EXAMPLES}"):
        fit_score(runs[: MIN_EXAMPLES - 1])
    with pytest.raises(KeelUserError, match="nothing to learn"):
        fit_score([(s, True) for s, _ in runs])


def test_a_threshold_certified_for_a_fitted_score_keeps_its_promise_on_new_runs() -> None:
    """Fit on one sample, certify on another, check on fresh runs: the risk stays ≤ α.

    Learn-then-Test promises P(risk ≤ α) ≥ 1 − δ over the draw of the certifying sample;
    over 200 such draws the promise must hold in at least 1 − δ of them (with slack for
    the 200 draws' own noise), and the certified thresholds must answer some runs. The
    certifying samples are drawn from a pool of runs, the risk measured on fresh ones.
    """
    rng = np.random.default_rng(11)
    alpha, delta, trials = 0.1, 0.1, 200
    fresh = _draw(rng, 5_000)
    fresh_features = _matrix([s for s, _ in fresh])
    fresh_wrong = np.array([not ok for _, ok in fresh])
    pool = _draw(rng, 6_000)
    pool_features = _matrix([s for s, _ in pool])
    pool_wrong = np.array([not ok for _, ok in pool])
    kept = answered = 0
    for _ in range(trials):
        model = fit_score(_draw(rng, 150))
        drawn = rng.choice(len(pool), 300, replace=False)  # the certifying sample
        certified = control_risk_arrays(
            _scores(model, pool_features[drawn]), pool_wrong[drawn], alpha, delta
        )
        if certified.threshold is None:
            kept += 1  # nothing answered: nothing sent wrong
            continue
        sent = _scores(model, fresh_features) >= certified.threshold
        kept += float(np.mean(sent & fresh_wrong)) <= alpha
        answered += float(np.mean(sent)) > 0.2
    assert kept >= (1 - delta) * trials - 2 * math.sqrt(trials * delta * (1 - delta))
    assert answered > trials / 2


def _matrix(signals: list[Signals]) -> np.ndarray:
    return np.array([[s.features()[f] for f in FEATURES] for s in signals])


def _scores(model: ScoreModel, features: np.ndarray) -> np.ndarray:
    """`model.score` of every row of `features`, as `ScoreModel.score` rounds it."""
    weights = np.array([model.weights.get(f, 0.0) for f in FEATURES])
    return np.round(1 / (1 + np.exp(-(model.intercept + features @ weights))), 3)


def _run(split: Split | None, ok: bool, signals: Signals | None, reason: str | None) -> LabelledRun:
    question = LabelledQuestion(question="q", answerable=True, key_facts=[["yes"]], split=split)
    return LabelledRun.model_validate(
        {
            "question": question,
            "confidence": 0.5,
            "escalated": reason is not None,
            "forced": reason is not None,
            "reason": reason,
            "answer": "yes" if ok else "no",
            "latency_s": 0.1,
            "signals": signals,
        }
    )


def test_fitting_on_a_labelled_set_never_certifies_on_the_runs_it_learnt_from() -> None:
    rng = np.random.default_rng(5)
    drawn = _draw(rng, 160)
    runs = [_run("tune" if i < 80 else "test", ok, s, None) for i, (s, ok) in enumerate(drawn)]
    fitted = fit_on_tune(runs)
    assert fitted.model.fitted_on == 80 and fitted.certify == runs[80:]
    # One split only: every other run fits, the rest certify.
    alone = [
        r.model_copy(update={"question": r.question.model_copy(update={"split": None})})
        for r in runs
    ]
    halves = fit_on_tune(alone)
    assert halves.model.fitted_on == 80 and halves.certify == alone[1::2]
    # A run a rule escalated (triage, a guard) is no example, and stays forced when rescored.
    triaged = _run("tune", False, drawn[0][0], "needs_person")
    assert rescored(triaged, fitted.model).forced
    scored = rescored(runs[0], fitted.model)
    assert not scored.forced and scored.confidence == fitted.model.score(drawn[0][0])
    assert scored.needed_person is not drawn[0][1]
    with pytest.raises(KeelUserError, match="no signals"):
        fit_on_tune([_run("tune", True, None, None)] * 40)


def test_a_weight_counts_as_that_many_copies_of_its_run() -> None:
    rng = np.random.default_rng(13)
    runs = _draw(rng, 300)
    doubled = fit_score(runs + runs[:100])
    weighted = fit_score(runs, [2.0] * 100 + [1.0] * 200)
    assert weighted.intercept == pytest.approx(doubled.intercept, abs=1e-3)
    for feature in FEATURES:
        assert weighted.weights[feature] == pytest.approx(doubled.weights[feature], abs=1e-3)


def _label(signals: Signals, needed: bool, reason: str, source: str = "escalation") -> LabelRow:
    return LabelRow(
        review_id=f"r-{uuid.uuid4().hex}",
        run_id="run",
        agent="support",
        reason=reason,
        verdict="reject" if needed else "approve",
        needed_person=needed,
        decided_at=datetime.now(UTC),
        source=source,
        weight=20.0 if source == "audit" else 1.0,
        signals=signals.model_dump(),
    )


def _source(index: int) -> str:
    return "audit" if index % 10 == 1 else "escalation"


def test_reviewer_verdicts_fit_on_one_half_and_certify_on_the_other() -> None:
    rng = np.random.default_rng(17)
    drawn = _draw(rng, 200)
    labels = [
        _label(
            s,
            not ok,
            "low_confidence" if i % 4 else "needs_person",
            "audit" if i % 10 == 1 else "escalation",
        )
        for i, (s, ok) in enumerate(drawn)
    ]
    labels.append(
        LabelRow.model_validate({**labels[0].model_dump(), "review_id": "old", "signals": None})
    )
    model, held = fit_on_verdicts(labels)
    # Every other label with signals fits, unless a rule (triage) decided it.
    fitting = labels[:200:2]
    assert model.fitted_on == sum(label.reason != "needs_person" for label in fitting)
    assert len(held) == 100
    for label, observation in zip(labels[1:200:2], held, strict=True):
        assert observation.forced == (label.reason == "needs_person")
        assert (
            observation.weight == label.weight and observation.needed_person == label.needed_person
        )
        assert observation.confidence == model.score(Signals.model_validate(label.signals))
    with pytest.raises(KeelUserError, match="there are 0"):
        fit_on_verdicts([])
