"""Escalation per route: the keyless default and a provider route, by rule and by a fitted score.

Every question of the `support` agent's labelled set is a real run (`cli.labelled`), on one
dev server, in four configurations:

- `local, rules`: the keyless default as shipped (triage, the local verifier's verdict and
  the answer's lexical confidence against the threshold 0.6);
- `local, score`: the same route deciding on a combined score (`keel.schemas.scoring`),
  fitted and certified the way `keel calibrate --fit` does it, on the tune split only;
- `provider, rules` and `provider, score`: the model route is an OpenAI deployment on a
  `WireServer` with a scripted model. It triages every message as `general`, answers with
  the first two sentences of the first passage, cites it and says `Confidence: 0.92`; its
  judge calls every answer `answered`. That is a fluent, confident and uncritical model: the
  mechanics of a provider route (its calls, costs and latency in the ledger, its confidence
  and verdicts as signals), not any model's quality.

For each route, the score model is fitted on one half of the tune split's runs and its
threshold certified on the other half (`keel.score_fit.fit_on_tune`) at each `ALPHAS`
level, δ = 0.1; then the test split runs with that policy. Every figure printed is on the
test split. `python -m bench.escalation_routes` runs this scenario alone.
"""

import asyncio
import html
import re
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench._harness import (
    WIRE_KEY_ENV,
    Options,
    dev_server,
    progress,
    scenario_arguments,
    wire_server,
)
from cli.devserver import DevServer
from cli.eval_report import render_markdown
from cli.labelled import quiet_sdk, run_labelled
from keel.calibration import load_labelled
from keel.evaluation import evaluate
from keel.risk_control import control_risk
from keel.schemas.calibration import LabelledQuestion, LabelledRun
from keel.schemas.evaluation import Evaluation
from keel.schemas.policy import AgentPolicy, EscalationSettings
from keel.schemas.routing import JUDGE_ROUTE, Deployment, Price, Route
from keel.score_fit import fit_on_tune, rescored
from keel.settings import Settings
from keel.testing.recording import WireRequest
from keel.testing.replies import Reply
from tools.text import split_sentences

__all__ = ["ALPHAS", "EVALS", "RouteEscalation", "fluent_model", "run"]

EVALS = Path(__file__).resolve().parents[1] / "workflows" / "agents" / "support" / "evals"
"""The support agent's labelled set: `tune.jsonl` and `test.jsonl`."""
ALPHAS = (0.05, 0.2)
"""Wrong-sent levels a score's threshold is certified at (δ = 0.1)."""
_DELTA = 0.1
_MODEL = "scripted-fluent"
_DOCUMENT = re.compile(r'<document id="([^"]*)"[^>]*>(.*?)</document>', re.DOTALL)


def fluent_model(request: WireRequest) -> Reply:
    """The scripted provider: triage `general`, the first passage quoted, a lenient judge."""
    text = request.text
    if "You check an answer drafted" in text:
        return Reply(text='{"verdict": "answered", "unsupported": [], "missing": ""}')
    if "Classify the conversation" in text:
        return Reply(text="general")
    found = _DOCUMENT.search(text)
    if found is None:
        return Reply(text="I could not find this in the help centre.\nConfidence: 0.5")
    passage_id, body = html.unescape(found.group(1)), html.unescape(found.group(2))
    quoted = " ".join(split_sentences(body.strip())[:2])
    return Reply(text=f"{quoted} [{passage_id}]\nConfidence: 0.92")


@dataclass(frozen=True)
class RouteEscalation:
    """Each configuration's evaluation on the test split, and how its score was certified."""

    evaluations: list[Evaluation]
    notes: list[str]

    def render(self) -> str:
        """The eval tables side by side, then how each score was fitted and certified."""
        return "\n".join([render_markdown(self.evaluations), "", *self.notes])


async def run(opts: Options, server: DevServer) -> RouteEscalation:
    """Every configuration on `server`: tune runs to fit each score, test runs to report."""
    del opts  # the labelled set fixes the number of runs
    tune = load_labelled(EVALS / "tune.jsonl")
    test = load_labelled(EVALS / "test.jsonl")
    evaluations: list[Evaluation] = []
    notes: list[str] = []
    async with wire_server(fluent_model) as wire:
        with tempfile.TemporaryDirectory(prefix="keel-bench-routes-") as tmp:
            for route, base in (
                ("local", _settings(server, Path(tmp))),
                ("provider", _provider(_settings(server, Path(tmp)), wire.openai_base_url)),
            ):
                progress(f"escalation per route: {route}, {len(tune)} tune questions")
                tuned = await _runs(base, tune)
                fitted = fit_on_tune(tuned)
                progress(f"escalation per route: {route}, rules, {len(test)} test questions")
                rules = await _runs(base, test)
                evaluations.append(_evaluate(f"{route}, rules", rules, base.review_threshold))
                certify = [rescored(r, fitted.model) for r in fitted.certify]
                for alpha in ALPHAS:
                    certified = control_risk(certify, alpha, _DELTA)
                    # Nothing certified: escalate everything, as `keel calibrate` advises.
                    threshold = 1.0 if certified.threshold is None else certified.threshold
                    name = f"{route}, score (α {alpha:g})"
                    notes.append(
                        f"- `{name}`: {fitted.model.fitted_on} tune runs fit "
                        f"`{fitted.model.model_dump_json(exclude={'fitted_on'})}`; "
                        f"{len(certify)} certify ({certified.status}) threshold {threshold:.3f}"
                    )
                    scored = _scored(base, fitted.model.model_dump(), threshold)
                    progress(f"escalation per route: {name}, {len(test)} test questions")
                    evaluations.append(_evaluate(name, await _runs(scored, test), threshold))
    return RouteEscalation(evaluations, notes)


def _settings(server: DevServer, data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir / uuid.uuid4().hex[:8],
        temporal_address=server.address,
        task_queue=f"bench-routes-{uuid.uuid4().hex[:8]}",
        review_timeout_s=3_600.0,
    )


def _provider(settings: Settings, base_url: str) -> Settings:
    """`settings` whose default and judge routes are the scripted OpenAI deployment."""
    deployment = Deployment(
        provider="openai",
        model=_MODEL,
        base_url=base_url,
        api_key_env=WIRE_KEY_ENV,
        price=Price(input=0.15, output=0.60),
        max_attempts=1,
        timeout_s=10.0,
    )
    routes = {"default": Route(candidates=["wire"]), JUDGE_ROUTE: Route(candidates=["wire"])}
    return settings.model_copy(update={"deployments": {"wire": deployment}, "routes": routes})


def _scored(settings: Settings, model: dict[str, object], threshold: float) -> Settings:
    policy = AgentPolicy.model_validate({"threshold": threshold, "score": model})
    escalation = settings.escalation.model_copy(update={"agents": {"support": policy}})
    return settings.model_copy(
        update={"escalation": EscalationSettings.model_validate(escalation.model_dump())}
    )


async def _runs(settings: Settings, questions: list[LabelledQuestion]) -> list[LabelledRun]:
    fresh = settings.model_copy(update={"task_queue": f"bench-routes-{uuid.uuid4().hex[:8]}"})
    return await run_labelled(fresh, "support", questions)


def _evaluate(name: str, runs: list[LabelledRun], threshold: float) -> Evaluation:
    return evaluate(
        runs,
        config=name,
        agent="support",
        labelled=str(EVALS / "test.jsonl"),
        threshold=threshold,
        split="test",
    )


async def _main() -> None:
    quiet_sdk()  # the runs the observation ends would fill the report with warnings
    async with dev_server(tuned=True) as server:
        result = await run(Options(), server)
    sys.stdout.write(result.render() + "\n")


if __name__ == "__main__":
    scenario_arguments(__spec__.name, __doc__)
    asyncio.run(_main())
