"""`keel calibrate AGENT`: how well the agent's escalations match what people decided.

It reads the reviewer verdicts kept as labels in Keel's database (`keel.labels`) and, with
`--labelled FILE`, also runs the agent on a labelled set of questions on a throwaway
embedded stack (a dev server and data directory of its own; the configured models, routes
and escalation policy). For each source it prints escalation precision and recall at the
agent's threshold, and the threshold certified to keep wrong answers sent without review at
most `--alpha` of all runs with probability at least 1 − `--delta` (`keel.risk_control`), or
why there is none: too few labels (and how many more are needed), or none certified. With
`--fit` it fits a combined score (`keel.score_fit`) on the labelled set's tune split, or
without `--labelled` on every other reviewer verdict whose label kept its run's signals
(audit grades weighted 1/p), certifies a threshold for that score on the rest, and prints
the `keel.toml` table that makes the agent decide on it.

Reviewer verdicts are of two strata: decided escalations (weight 1) and graded audit
samples of the answers sent without review (weight 1/p, p their sampling probability), so
the certified threshold corrects for escalations being labelled far more often. From the
audit grades alone it also prints the agent's wrong-sent rate, with its interval
(`keel.quality`).
"""

import argparse
import asyncio
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from keel.admission import run_policy
from keel.calibration import (
    agent_threshold,
    load_labelled,
    render_scores,
    score,
    suggest_threshold,
)
from keel.db import create_engine, init_db, session_factory
from keel.errors import KeelUserError
from keel.evaluation import risk_observation
from keel.labels import agent_labels, observations
from keel.quality import render_wrong_sent, wrong_sent
from keel.risk_control import control_risk, render_risk_control
from keel.schemas.calibration import Observation, RiskControl, Scores, WrongSentEstimate
from keel.schemas.scoring import ScoreModel
from keel.score_fit import fit_on_tune, fit_on_verdicts, rescored
from keel.settings import Settings

__all__ = ["COMMAND", "Calibration", "add_parser", "run"]

COMMAND = "calibrate"
"""The top-level command this module serves."""


class Calibration(BaseModel):
    """One source of labels scored: at the threshold in force, and the certified one."""

    source: str
    labels: int
    at_threshold: Scores
    risk: RiskControl
    splits: dict[str, Scores] = {}
    fitted: ScoreModel | None = None
    """With `--fit`: the score model fitted; `risk` is then for its score."""
    target_recall: float | None = None
    suggested: Scores | None = None
    """With `--target-recall`: the lowest threshold whose recall reaches it (no guarantee)."""
    wrong_sent: WrongSentEstimate | None = None


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add `calibrate` to the `keel` parser."""
    calibrate = sub.add_parser(
        COMMAND, help="escalation precision/recall against reviewer verdicts and labelled sets"
    )
    calibrate.add_argument("agent")
    calibrate.add_argument(
        "--labelled",
        type=Path,
        help="JSON Lines of {question, answerable[, split]}: each is run on a temporary stack",
    )
    calibrate.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="largest share of runs answered wrongly without review (default 0.05)",
    )
    calibrate.add_argument(
        "--delta",
        type=float,
        default=0.1,
        help="allowed probability that the guarantee fails (default 0.1)",
    )
    calibrate.add_argument(
        "--threshold", type=float, help="score at this threshold (default: the agent's)"
    )
    calibrate.add_argument(
        "--fit",
        action="store_true",
        help="fit a combined score and certify a threshold for it on other labels: with "
        "--labelled on the set's tune split, else on every other reviewer verdict that kept "
        "its run's signals; prints the [escalation.agents.AGENT] table to use",
    )
    calibrate.add_argument(
        "--target-recall",
        type=float,
        help="also show the lowest threshold whose recall reaches this (a point estimate)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run `keel calibrate`; its exit code."""
    if not 0 < args.alpha < 1 or not 0 < args.delta < 1:
        raise KeelUserError("--alpha and --delta must be in (0, 1)")
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise KeelUserError("--threshold must be in [0, 1]")
    if args.target_recall is not None and not 0 < args.target_recall <= 1:
        raise KeelUserError("--target-recall must be in (0, 1]")
    threshold = (
        args.threshold if args.threshold is not None else agent_threshold(settings, args.agent)
    )
    results = [asyncio.run(_from_verdicts(settings, args, threshold))]
    if args.labelled is not None:
        results.append(asyncio.run(_from_labelled(settings, args, threshold)))
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in results], indent=2))
        return 0
    print(f"agent {args.agent}: escalates below confidence {threshold:.3f}")
    for result in results:
        _print(result, args.agent)
    return 0


def _calibration(
    source: str, found: list[Observation], threshold: float, args: argparse.Namespace
) -> Calibration:
    splits = {
        split: score([o for o in found if o.split == split], threshold)
        for split in ("tune", "test", "holdout")
        if any(o.split == split for o in found)
    }
    return Calibration(
        source=source,
        labels=len(found),
        at_threshold=score(found, threshold),
        risk=control_risk(found, args.alpha, args.delta),
        splits=splits,
        target_recall=args.target_recall,
        suggested=(
            None if args.target_recall is None else suggest_threshold(found, args.target_recall)
        ),
    )


async def _from_verdicts(
    settings: Settings, args: argparse.Namespace, threshold: float
) -> Calibration:
    engine = create_engine(settings.sql_url)
    try:
        await init_db(engine)
        async with session_factory(engine)() as session:
            labels = await agent_labels(session, args.agent)
    finally:
        await engine.dispose()
    if args.fit and args.labelled is None:
        model, held = fit_on_verdicts(labels)
        found = _calibration(
            f"reviewer verdicts: the score fitted on every other label ({model.fitted_on} "
            "that a score decides; the rest certify)",
            held,
            threshold,
            args,
        )
        found.fitted = model
    else:
        found = _calibration("reviewer verdicts", observations(labels), threshold, args)
    rate = run_policy(settings, args.agent).audit_rate
    found.wrong_sent = wrong_sent(args.agent, labels, audit_rate=rate)
    return found


async def _from_labelled(
    settings: Settings, args: argparse.Namespace, threshold: float
) -> Calibration:
    # A worker's imports are heavy: only a labelled set needs them, so only it pays for them.
    from cli.labelled import calibration_stack, quiet_sdk, run_labelled

    quiet_sdk()

    questions = load_labelled(args.labelled)
    print(
        f"running {len(questions)} labelled questions on a temporary embedded stack…",
        file=sys.stderr,
    )
    async with calibration_stack(settings) as isolated:
        runs = await run_labelled(isolated, args.agent, questions)
    source = f"labelled set {args.labelled}"
    if not args.fit:
        return _calibration(source, [risk_observation(r) for r in runs], threshold, args)
    fitted = fit_on_tune(runs)
    held = [rescored(r, fitted.model) for r in fitted.certify]
    found = _calibration(
        f"{source}: the score fitted on {fitted.source} ({fitted.model.fitted_on} runs)",
        held,
        threshold,
        args,
    )
    found.fitted = fitted.model
    return found


def _fitted_table(agent: str, result: Calibration) -> str:
    """The `keel.toml` lines that make `agent` decide on the fitted score."""
    assert result.fitted is not None
    lines = ["", f"  to decide on this score, put in keel.toml ([escalation.agents.{agent}]):"]
    threshold = result.risk.threshold
    table = [f"[escalation.agents.{agent}]"]
    if threshold is None:
        lines.append("  (no threshold is certified: keep the threshold you have, or escalate all)")
    else:
        table.append(f"threshold = {threshold:.3f}")
    weights = ", ".join(f"{f} = {w}" for f, w in result.fitted.weights.items())
    table += [
        f"[escalation.agents.{agent}.score]",
        f"intercept = {result.fitted.intercept}",
        f"fitted_on = {result.fitted.fitted_on}",
        f"weights = {{ {weights} }}",
    ]
    return "\n".join(lines + ["    " + line for line in table])


def _print(result: Calibration, agent: str) -> None:
    print(f"\n{result.source}: {result.labels} labels")
    if result.wrong_sent is not None:
        print("  " + render_wrong_sent(result.wrong_sent))
    if result.labels == 0:
        print("  none yet: decided reviews opened on confidence and graded audits become labels")
        return
    print("  " + render_scores("at the threshold", result.at_threshold))
    for split, scores in result.splits.items():
        print("  " + render_scores(f"  {split} half", scores))
    for line in render_risk_control(result.risk):
        print("  " + line)
    if result.fitted is not None:
        print(_fitted_table(agent, result))
    if result.suggested is not None:
        label = f"suggested (recall ≥ {result.target_recall:g})"
        print("  " + render_scores(label, result.suggested))
    if result.source.startswith("reviewer verdicts"):
        print(
            "  (escalated runs weigh 1 and graded audits 1/p, so the guarantee covers all "
            "runs; without audit grades it covers runs like the escalated ones only, and "
            "recall is among reviewed runs)"
        )
