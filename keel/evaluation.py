"""Scoring an agent's runs on a labelled set: escalation, answers sent unreviewed, cost.

Escalating is the positive (`keel.calibration.score`). An answer *sent without review* is
wrong when its question needed a person, and *incomplete* when it misses one of the
question's key facts; the wrong-sent rate counts both, among the answers sent, with an
exact (Clopper–Pearson) two-sided interval. The risk/coverage curve moves the confidence
threshold over the observed confidences: at λ a run is answered when it was not forced to
escalate and its confidence is at least λ, with the answer it sent or proposed.
"""

import math
from collections.abc import Sequence

from keel.calibration import score
from keel.risk_control import clopper_pearson_upper
from keel.schemas.calibration import LabelledQuestion, LabelledRun, Observation
from keel.schemas.evaluation import (
    CurvePoint,
    Evaluation,
    GroupScores,
    Interval,
    ModelCost,
    QuestionResult,
    RouteCost,
)

__all__ = [
    "ALL",
    "ANSWERED",
    "clopper_pearson",
    "evaluate",
    "group_scores",
    "has_key_facts",
    "model_costs",
    "risk_coverage",
    "risk_observation",
    "route_costs",
    "wrong_answer",
]

ALL = "all"
"""The group of every question."""
ANSWERED = "answered without review"
"""The route of runs that sent their answer."""
_NO_CATEGORY = "(none)"


def has_key_facts(answer: str | None, key_facts: Sequence[Sequence[str]]) -> bool:
    """Whether, for every fact, one alternative is a case-insensitive substring of `answer`."""
    text = (answer or "").casefold()
    return all(any(alt.casefold() in text for alt in fact) for fact in key_facts)


def wrong_answer(question: LabelledQuestion, answer: str | None) -> bool:
    """Whether sending `answer` unreviewed is wrong: a person was needed, or a fact is missing."""
    return not question.answerable or not has_key_facts(answer, question.key_facts)


def risk_observation(run: LabelledRun) -> Observation:
    """`run`'s decision, labelled by whether its answer was unfit to send unreviewed.

    A person was needed when the question needed one or the answer misses a key fact: what
    a reviewer's edit says of a proposed answer, so labelled sets and verdicts agree.
    """
    return run.observation().model_copy(
        update={"needed_person": wrong_answer(run.question, run.answer)}
    )


def clopper_pearson(errors: int, n: int, confidence: float = 0.95) -> Interval | None:
    """The exact two-sided interval on a binomial rate (None without trials)."""
    if n == 0:
        return None
    tail = (1 - confidence) / 2
    low = 0.0 if errors == 0 else 1 - clopper_pearson_upper(n - errors, n, tail)
    return Interval(low=low, high=clopper_pearson_upper(errors, n, tail), confidence=confidence)


def group_scores(group: str, runs: Sequence[LabelledRun], threshold: float) -> GroupScores:
    """Escalation and unreviewed answers of `runs` (as observed: at `threshold`)."""
    sent = [r for r in runs if not r.escalated]
    wrong = sum(wrong_answer(r.question, r.answer) for r in sent)
    return GroupScores(
        group=group,
        questions=len(runs),
        escalation=score((r.observation() for r in runs), threshold),
        sent=len(sent),
        sent_wrong=wrong,
        sent_incomplete=sum(
            r.question.answerable and not has_key_facts(r.answer, r.question.key_facts)
            for r in sent
        ),
        wrong_sent_interval=clopper_pearson(wrong, len(sent)),
        answerable=sum(r.question.answerable for r in runs),
        answerable_sent=sum(r.question.answerable for r in sent),
    )


def _nearest_rank(ordered: Sequence[float], share: float) -> float:
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def route_costs(runs: Sequence[LabelledRun]) -> list[RouteCost]:
    """Cost and wall time per route: answered without review, or escalated for each reason."""
    routes: dict[str, list[LabelledRun]] = {}
    for run in runs:
        route = f"escalated: {run.reason or 'reviewed'}" if run.escalated else ANSWERED
        routes.setdefault(route, []).append(run)
    costs: list[RouteCost] = []
    for route, taken in sorted(routes.items(), key=lambda item: item[0] != ANSWERED):
        spent = [r.ledger.total_usd for r in taken]
        latency = sorted(r.latency_s for r in taken)
        costs.append(
            RouteCost(
                route=route,
                runs=len(taken),
                cost_usd_mean=sum(spent) / len(taken),
                cost_usd_total=sum(spent),
                latency_s_mean=sum(latency) / len(taken),
                latency_s_p50=_nearest_rank(latency, 0.5),
                latency_s_p95=_nearest_rank(latency, 0.95),
            )
        )
    return costs


def model_costs(runs: Sequence[LabelledRun]) -> list[ModelCost]:
    """The model calls of all runs, per provider and model."""
    costs: dict[tuple[str, str], ModelCost] = {}
    for entry in (e for r in runs for e in r.ledger.entries):
        key = (entry.provider, entry.model)
        seen = costs.get(key) or ModelCost(
            provider=entry.provider,
            model=entry.model,
            calls=0,
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
        )
        costs[key] = seen.model_copy(
            update={
                "calls": seen.calls + 1,
                "input_tokens": seen.input_tokens + entry.usage.input_tokens,
                "output_tokens": seen.output_tokens + entry.usage.output_tokens,
                "cost_usd": seen.cost_usd + entry.cost_usd,
            }
        )
    return sorted(costs.values(), key=lambda c: (c.provider, c.model))


def risk_coverage(runs: Sequence[LabelledRun]) -> list[CurvePoint]:
    """The wrong-sent rate against the share answered, at each observed confidence."""
    open_ = sorted(
        ((r.confidence, wrong_answer(r.question, r.answer)) for r in runs if not r.forced),
        key=lambda pair: -pair[0],
    )
    points: list[CurvePoint] = []
    answered = wrong = 0
    for index, (confidence, is_wrong) in enumerate(open_):
        answered, wrong = answered + 1, wrong + is_wrong
        if index + 1 < len(open_) and open_[index + 1][0] == confidence:
            continue  # equal confidences are answered together
        points.append(
            CurvePoint(
                threshold=confidence, answered=answered / len(runs), wrong_sent=wrong / answered
            )
        )
    return points


def evaluate(
    runs: Sequence[LabelledRun],
    *,
    config: str,
    agent: str,
    labelled: str,
    threshold: float,
    split: str | None = None,
) -> Evaluation:
    """Every figure of `keel eval` for one configuration's runs."""
    categories: dict[str, list[LabelledRun]] = {}
    for run in runs:
        categories.setdefault(run.question.category or _NO_CATEGORY, []).append(run)
    groups = [group_scores(ALL, runs, threshold)]
    if list(categories) != [_NO_CATEGORY]:
        groups += [group_scores(name, part, threshold) for name, part in categories.items()]
    return Evaluation(
        config=config,
        agent=agent,
        labelled=labelled,
        split=split,
        threshold=threshold,
        groups=groups,
        routes=route_costs(runs),
        models=model_costs(runs),
        curve=risk_coverage(runs),
        questions=[_result(run) for run in runs],
    )


def _result(run: LabelledRun) -> QuestionResult:
    return QuestionResult(
        id=run.question.id,
        category=run.question.category,
        answerable=run.question.answerable,
        escalated=run.escalated,
        reason=run.reason,
        confidence=run.confidence,
        wrong=wrong_answer(run.question, run.answer),
        answer=run.answer,
        latency_s=run.latency_s,
    )
