"""A confidence threshold chosen with a stated guarantee: wrong answers sent unreviewed ≤ α.

A run is *answered without review* at threshold λ when it is not forced to escalate and its
confidence is at least λ; it is a *wrong answer sent* when, besides, its label says it
needed a person. The risk R(λ) is the share of all runs that are wrong answers sent. It can
only fall as λ rises (a higher threshold escalates more), so it is monotone.

`control_risk` returns the lowest λ (the one answering most runs) such that

    P( R(λ) ≤ α ) ≥ 1 − δ      over the draw of the labelled runs,

by Learn-then-Test (Angelopoulos et al., 2021) with fixed-sequence testing: the grid
`GRID` (1.000, 0.999, …, 0.000, fixed before seeing data) is walked downwards, testing at
each λ the null hypothesis R(λ) > α with the exact binomial p-value
P(Binomial(n, α) ≤ k), k the wrong answers sent among the n labels; the walk stops at the
first λ it cannot reject at level δ, and the last rejected λ is the answer. Fixed-sequence
testing keeps the family-wise error at δ, so the guarantee holds in finite samples for
labelled runs drawn independently from the runs the threshold will decide. When no λ is
certified the answer is to escalate everything (`threshold` None), never a guess.

Rejecting R(λ) > α at level δ is the same as the one-sided Clopper–Pearson upper bound at
confidence 1 − δ being at most α, so the bound reported at the chosen λ is at most α.

Too few labels certify nothing: with no error at all, P(Binomial(n, α) ≤ 0) = (1 − α)ⁿ
must reach δ, so n ≥ ln δ / ln(1 − α) (45 for α = 0.05, δ = 0.1); `MIN_LABELS` is a floor
below which no threshold is suggested either way.

**Weights.** A label from audit sampling (an answer sent unreviewed, graded with
probability p) carries weight 1/p. Weighted runs use Kish's effective sample size
n_eff = (Σw)² / Σw² and the weighted rate r̂ = Σw·loss / Σw: the test and the bound use
n' = ⌊n_eff⌋ labels with ⌈r̂·n'⌉ errors. This is an approximation, not an exact
finite-sample guarantee: it treats the weighted sample as n' independent labels. With
equal weights it is the exact test above.
"""

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from keel.schemas.calibration import Observation, RiskControl

__all__ = [
    "GRID",
    "MIN_LABELS",
    "clopper_pearson_interval",
    "clopper_pearson_upper",
    "control_risk",
    "control_risk_arrays",
    "min_labels",
    "render_risk_control",
]

GRID = np.round(np.arange(1000, -1, -1) / 1000, 3)
"""Candidate thresholds, highest (escalates most) first, fixed before any data is seen."""
MIN_LABELS = 30
"""No threshold is suggested from fewer labels, whatever α and δ would allow."""
_EPS = 1e-9


def min_labels(alpha: float, delta: float) -> int:
    """The fewest labels that could certify any threshold at (α, δ): `MIN_LABELS` at least."""
    _check(alpha, delta)
    return max(MIN_LABELS, math.ceil(math.log(delta) / math.log1p(-alpha) - _EPS))


def _check(alpha: float, delta: float) -> None:
    if not 0 < alpha < 1 or not 0 < delta < 1:
        raise ValueError(f"alpha and delta must be in (0, 1), got {alpha} and {delta}")


def _binomial_cdf(n: int, p: float, upto: int | None = None) -> npt.NDArray[np.float64]:
    """P(Binomial(n, p) ≤ k) for k = 0…`upto` (n when None), summed in log space."""
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    k = np.arange((n if upto is None else upto) + 1)
    log_pmf = log_fact[n] - log_fact[k] - log_fact[n - k] + k * math.log(p)
    log_pmf += (n - k) * math.log1p(-p)
    return np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)


def clopper_pearson_upper(errors: int, n: int, delta: float) -> float:
    """The one-sided Clopper–Pearson upper bound at confidence 1 − δ on a binomial rate."""
    if errors >= n:
        return 1.0
    low, high = 0.0, 1.0
    while high - low > 1e-10:  # bisection: the tail P(Bin(n, u) ≤ errors) falls as u rises
        middle = (low + high) / 2
        if _binomial_cdf(n, middle, errors)[-1] > delta:
            low = middle
        else:
            high = middle
    return high


def clopper_pearson_interval(errors: int, n: int, confidence: float) -> tuple[float, float]:
    """The two-sided Clopper–Pearson interval at `confidence` on a binomial rate (n ≥ 1)."""
    if n < 1 or not 0 <= errors <= n or not 0 < confidence < 1:
        raise ValueError(f"no interval for {errors} errors in {n} at {confidence}")
    tail = (1 - confidence) / 2
    lower = 0.0 if errors == 0 else 1.0 - clopper_pearson_upper(n - errors, n, tail)
    return lower, clopper_pearson_upper(errors, n, tail)


def control_risk(observations: Sequence[Observation], alpha: float, delta: float) -> RiskControl:
    """The certified threshold for labelled observations (see the module docstring)."""
    return control_risk_arrays(
        confidence=np.array([o.confidence for o in observations], dtype=float),
        needed_person=np.array([o.needed_person for o in observations], dtype=bool),
        forced=np.array([o.forced for o in observations], dtype=bool),
        weights=np.array([o.weight for o in observations], dtype=float),
        alpha=alpha,
        delta=delta,
    )


def control_risk_arrays(
    confidence: npt.ArrayLike,
    needed_person: npt.ArrayLike,
    alpha: float,
    delta: float,
    forced: npt.ArrayLike | None = None,
    weights: npt.ArrayLike | None = None,
) -> RiskControl:
    """`control_risk` on arrays: one entry per labelled run, weights 1 unless given.

    Raises:
        ValueError: α or δ is outside (0, 1), the arrays differ in length, or a weight is
            not positive.

    """
    _check(alpha, delta)
    score = np.asarray(confidence, dtype=float)
    needed = np.asarray(needed_person, dtype=bool)
    n = score.size
    escalated = np.zeros(n, bool) if forced is None else np.asarray(forced, dtype=bool)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if not needed.size == escalated.size == w.size == n:
        raise ValueError("confidence, needed_person, forced and weights differ in length")
    if np.any(w <= 0):
        raise ValueError("weights must be positive")
    fewest = min_labels(alpha, delta)
    effective = float(w.sum() ** 2 / (w**2).sum()) if n else 0.0
    result = RiskControl(
        alpha=alpha,
        delta=delta,
        labels=n,
        effective_labels=round(effective, 3),
        min_labels=fewest,
        status="too_few_labels",
    )
    n_test = math.floor(effective + _EPS)
    if n_test < fewest:
        more = fewest if n == 0 else math.ceil((fewest - effective) * n / effective - _EPS)
        return result.model_copy(update={"more_labels_needed": max(more, 1)})

    # Each run is answered at every λ up to its confidence (forced runs: at none).
    reach = np.where(escalated, -np.inf, score)
    total = w.sum()
    wrong = _weighted_at_or_above(reach[needed], w[needed]) / total
    answered = _weighted_at_or_above(reach, w) / total
    errors = np.ceil(wrong * n_test - _EPS).astype(int)
    p_values = _binomial_cdf(n_test, alpha)[np.minimum(errors, n_test)]
    rejected = np.cumprod(p_values <= delta).astype(bool)  # fixed sequence: stop at the first
    if not rejected[0]:
        return result.model_copy(update={"status": "none_certified"})
    at = int(np.flatnonzero(rejected)[-1])
    return result.model_copy(
        update={
            "status": "certified",
            "threshold": float(GRID[at]),
            "wrong_sent": float(wrong[at]),
            "wrong_sent_upper": clopper_pearson_upper(int(errors[at]), n_test, delta),
            "answered": float(answered[at]),
        }
    )


def _weighted_at_or_above(
    values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """For each λ of `GRID`, the total weight of the values ≥ λ."""
    order = np.argsort(values)
    ordered, cumulative = values[order], np.concatenate([[0.0], np.cumsum(weights[order])])
    below = np.searchsorted(ordered, GRID, side="left")
    return cumulative[-1] - cumulative[below]


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def render_risk_control(result: RiskControl) -> list[str]:
    """The result in words: the threshold and its guarantee, or why there is none."""
    promise = (
        f"wrong answers sent without review ≤ {_percent(result.alpha)} "
        f"with probability ≥ {100 * (1 - result.delta):g} %"
    )
    weighted = result.effective_labels < result.labels - _EPS
    labels = f"{result.labels} labels" + (
        f" ({result.effective_labels:.1f} effective, weighted)" if weighted else ""
    )
    if result.status == "too_few_labels":
        return [
            f"no threshold suggested: {labels}; {promise} needs at least {result.min_labels} "
            f"labels ({result.more_labels_needed} more)"
        ]
    if result.status == "none_certified":
        return [f"no threshold certified from {labels}: none keeps {promise}; escalate everything"]
    assert result.threshold is not None and result.wrong_sent is not None
    assert result.wrong_sent_upper is not None and result.answered is not None
    return [
        f"certified threshold {result.threshold:.3f}: {promise}, from {labels}",
        f"  wrong sent {_percent(result.wrong_sent)} (upper bound "
        f"{_percent(result.wrong_sent_upper)}), answered without review "
        f"{_percent(result.answered)}",
    ]
