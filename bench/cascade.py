"""Scenario 7: is a cascade worth it? Accuracy and cost on a mixed-difficulty labelled set.

The set: `--cascade-items` support tickets (`random.Random(7)`), 60% easy and 40% hard,
each with a true label among five. Two scripted models answer on a `WireServer`, told
apart by the model name in the request, every call billed 400 input and 5 output tokens:

- `cheap` (0.15 / 0.60 $ per M tokens) is right on 97% of easy and 45% of hard items. It
  reports 0.85-0.99 when right on an easy item, 0.40-0.80 when right on a hard one, and
  0.30-0.75 when wrong, so on hard items its confidence barely separates right from wrong.
- `strong` (2.50 / 10.00 $ per M, about 16× cheap a call) is right on 95% of all items,
  at 0.90-0.99 whether right or not.

What each model says about each item, and how sure it is, is drawn once per item from
the seeded generator, and the prompt carries the item's id, so every run is the same.
Confidence reaches Keel as OpenAI logprobs. Each configuration is one `AgentWorkflow`
run whose workflow-side node sends every item through the real Router (`step` =
`item-<id>`, so one or two `model.call` activities per item); accuracy is the run's
labels against the truth, cost is the run's ledger. The table also checks that the
router escalated exactly where the item table says it should.
"""

import asyncio
import json
import random
import re
from dataclasses import dataclass
from typing import Any

from langgraph.graph import StateGraph
from pydantic import BaseModel, Field

from bench._graph import workflow_pair
from bench._harness import (
    WIRE_KEY_ENV,
    KeelWorker,
    Options,
    admitted,
    keel_worker,
    progress,
    wire_server,
)
from cli.devserver import DevServer
from keel.agents import AgentSpec
from keel.schemas.model import Message, ModelRequest
from keel.schemas.routing import Deployment, Price, Route
from keel.schemas.runs import AgentState, Outcome, RunResult
from keel.testing.recording import WireRequest
from keel.testing.replies import Reply, Usage
from workflows.run_context import run_context

__all__ = [
    "GRAPH",
    "LABELS",
    "SPEC",
    "THRESHOLDS",
    "CascadeInput",
    "CascadeState",
    "Item",
    "Said",
    "build_graph",
    "classify",
    "finish",
    "labelled_set",
    "run",
]

GRAPH = "bench-cascade"
"""The graph's agent name."""
LABELS = ("billing", "account", "shipping", "technical", "returns")
"""The classes; the model answers with one of them."""
THRESHOLDS = (0.5, 0.7, 0.8, 0.9)
"""Cascade thresholds compared (cheap → strong)."""
SEED = 7
EASY_SHARE = 0.6

_PRICES = {"cheap": Price(input=0.15, output=0.6), "strong": Price(input=2.5, output=10.0)}
_USAGE = Usage(input_tokens=400, output_tokens=5)
_IN_FLIGHT = 25
"""Items the workflow classifies at once (each item's own calls stay in order)."""
_TICKET = re.compile(r"Ticket #(\d+):")
_ACCURACY_KEPT = 0.95
_COST_ALLOWED = 0.5


@dataclass(frozen=True)
class Said:
    """One model's answer to one item."""

    label: str
    confidence: float


@dataclass(frozen=True)
class Item:
    """A labelled item and what each model says about it."""

    id: int
    truth: str
    easy: bool
    cheap: Said
    strong: Said


def _said(rng: random.Random, truth: str, right: bool, low: float, high: float) -> Said:
    wrong = rng.choice([label for label in LABELS if label != truth])
    # Three places: Keel rounds a logprob confidence to three places, and the offline
    # check below must compare with exactly what the router saw.
    return Said(truth if right else wrong, round(rng.uniform(low, high), 3))


def labelled_set(n: int, seed: int = SEED) -> list[Item]:
    """`n` items, the same for the same `n` and `seed`."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        truth = rng.choice(LABELS)
        easy = rng.random() < EASY_SHARE
        cheap_right = rng.random() < (0.97 if easy else 0.45)
        if cheap_right and easy:
            band = (0.85, 0.99)
        elif cheap_right:
            band = (0.40, 0.80)
        else:
            band = (0.30, 0.75)
        cheap = _said(rng, truth, cheap_right, *band)
        strong = _said(rng, truth, rng.random() < 0.95, 0.90, 0.99)
        items.append(Item(i, truth, easy, cheap, strong))
    return items


class CascadeInput(BaseModel):
    """The run's input: which route, how many items."""

    route: str
    items: int = Field(ge=1)


class CascadeState(AgentState):
    """The label the router's final answer gave each item, in item order."""

    labels: list[str] = Field(default_factory=list)


def _prompt(item_id: int) -> str:
    """The user message; the responder finds the item by its id."""
    return f"Ticket #{item_id:04d}: a customer message to route to one team."


async def _classify_one(route: str, item_id: int) -> str:
    request = ModelRequest(
        route=route,
        messages=[Message(role="user", content=_prompt(item_id))],
        labels=list(LABELS),
        max_output_tokens=_USAGE.output_tokens,
    )
    response = await run_context().router.complete(request, step=f"item-{item_id}")
    return response.label or ""


async def classify(state: CascadeState) -> dict[str, Any]:
    """Send every item through the run's route, `_IN_FLIGHT` at a time."""
    run = CascadeInput.model_validate(state.input)
    ids = list(range(run.items))
    # The first call plans the route (a local activity); calls started before that plan
    # returned would each plan it again.
    batches = [ids[:1]] + [ids[i : i + _IN_FLIGHT] for i in range(1, len(ids), _IN_FLIGHT)]
    labels: list[str] = []
    for batch in batches:
        labels += await asyncio.gather(*(_classify_one(run.route, i) for i in batch))
    return {"labels": labels}


def finish(state: CascadeState) -> dict[str, Any]:
    """The labels, as JSON, are the run's answer."""
    outcome = Outcome(answer=json.dumps(state.labels), confidence=1.0)
    return {"result": RunResult(status="completed", outcome=outcome)}


def build_graph() -> StateGraph[Any, Any, Any, Any]:
    """classify → finish, both in the workflow."""
    return workflow_pair(CascadeState, ("classify", classify), finish)


SPEC = AgentSpec(
    name=GRAPH,
    description="Classifies labelled items through a model route.",
    input_model=CascadeInput,
    text_field="route",
    graph="bench.cascade:build_graph",
)
"""The graph as an agent, for admitting its runs."""


def _responder(items: list[Item]) -> Any:
    def respond(request: WireRequest) -> Reply:
        found = _TICKET.search(request.prompt)
        if found is None or request.model not in _PRICES:
            return Reply.error(400, f"no ticket id or unknown model {request.model!r}")
        item = items[int(found[1])]
        said = item.cheap if request.model == "cheap" else item.strong
        return Reply(text=said.label, usage=_USAGE, confidence=said.confidence)

    return respond


@dataclass(frozen=True)
class _Config:
    name: str
    route: str
    threshold: float | None


@dataclass(frozen=True)
class _Outcome:
    config: _Config
    accuracy: float
    cost_usd: float
    escalated: float
    cheap_calls: int
    strong_calls: int
    as_expected: bool


def _configs() -> list[_Config]:
    configs = [
        _Config("fixed strong", "fixed-strong", None),
        _Config("fixed cheap", "fixed-cheap", None),
    ]
    configs += [_Config(f"cascade @ {t:.1f}", f"cascade-{t}", t) for t in THRESHOLDS]
    return configs


def _routes() -> dict[str, Route]:
    routes = {
        "fixed-strong": Route(candidates=["strong"]),
        "fixed-cheap": Route(candidates=["cheap"]),
    }
    for t in THRESHOLDS:
        routes[f"cascade-{t}"] = Route(
            strategy="cascade", candidates=["cheap", "strong"], threshold=t
        )
    return routes


def _expected(config: _Config, item: Item) -> tuple[str, bool]:
    """The final label and whether `strong` was asked, as the route should decide."""
    if config.route == "fixed-strong":
        return item.strong.label, True
    if config.route == "fixed-cheap" or item.cheap.confidence >= (config.threshold or 0.0):
        return item.cheap.label, False
    return item.strong.label, True


async def _run_config(worker: KeelWorker, config: _Config, items: list[Item]) -> _Outcome:
    raw = CascadeInput(route=config.route, items=len(items)).model_dump()
    result = await worker.run(admitted(SPEC, raw, review_threshold=0.5, review_timeout_s=60))
    labels = json.loads(result.outcome.answer or "[]")
    if result.status != "completed" or len(labels) != len(items):
        raise RuntimeError(f"the cascade bench graph returned {result.outcome!r}")
    entries = result.ledger.entries
    strong_steps = {e.step for e in entries if e.deployment == "strong"}
    expected = [_expected(config, item) for item in items]
    as_expected = labels == [label for label, _ in expected] and strong_steps == {
        f"item-{item.id}" for item, (_, strong) in zip(items, expected, strict=True) if strong
    }
    return _Outcome(
        config=config,
        accuracy=sum(a == i.truth for a, i in zip(labels, items, strict=True)) / len(items),
        cost_usd=result.ledger.total_usd,
        escalated=len(strong_steps) / len(items),
        cheap_calls=sum(e.deployment == "cheap" for e in entries),
        strong_calls=sum(e.deployment == "strong" for e in entries),
        as_expected=as_expected,
    )


@dataclass(frozen=True)
class Cascade:
    """Every configuration's outcome on the labelled set."""

    items: list[Item]
    outcomes: list[_Outcome]

    def _meets(self, o: _Outcome, strong: _Outcome) -> bool:
        return (
            o.accuracy >= _ACCURACY_KEPT * strong.accuracy
            and o.cost_usd <= _COST_ALLOWED * strong.cost_usd
        )

    def render(self) -> str:
        """The comparison table and the verdict on the product target."""
        strong = next(o for o in self.outcomes if o.config.route == "fixed-strong")
        meeting = [
            o for o in self.outcomes if o.config.threshold is not None and self._meets(o, strong)
        ]
        best = min(meeting, key=lambda o: (o.cost_usd, -o.accuracy), default=None)
        easy = sum(i.easy for i in self.items)
        lines = [
            f"Cascade on {len(self.items)} labelled items ({easy} easy, "
            f"{len(self.items) - easy} hard; seed {SEED}); cheap $0.15/$0.60, strong "
            "$2.50/$10 per M tokens; 400 in + 5 out tokens a call:",
            "",
            "| configuration | accuracy | cost (USD) | cost vs strong | accuracy vs strong "
            "| share escalated to strong | calls cheap + strong |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for o in self.outcomes:
            name = f"**{o.config.name}** ✓ best" if o is best else o.config.name
            lines.append(
                f"| {name} | {o.accuracy:.1%} | {o.cost_usd:.4f} | "
                f"{o.cost_usd / strong.cost_usd:.1%} | {o.accuracy / strong.accuracy:.1%} | "
                f"{o.escalated:.1%} | {o.cheap_calls} + {o.strong_calls} |"
            )
        target = (
            f"Target: ≥ {_ACCURACY_KEPT:.0%} of strong's accuracy at ≤ {_COST_ALLOWED:.0%} of "
            "its cost."
        )
        if best is None:
            verdict = f"{target} No cascade threshold meets it."
        else:
            others = [o.config.name for o in meeting if o is not best]
            also = f" (also meeting it: {', '.join(others)})" if others else ""
            verdict = (
                f"{target} Best (cheapest that meets it): {best.config.name}, "
                f"{best.accuracy:.1%} accuracy at {best.cost_usd / strong.cost_usd:.1%} of "
                f"strong's cost{also}."
            )
        wrong = [o.config.name for o in self.outcomes if not o.as_expected]
        check = (
            "Router decisions match the item table in every configuration."
            if not wrong
            else f"**Router decisions differ from the item table in: {', '.join(wrong)}.**"
        )
        return "\n".join([*lines, "", verdict, check])


async def run(opts: Options, server: DevServer) -> Cascade:
    """Every configuration, one run each, on one worker and one WireServer."""
    items = labelled_set(opts.cascade_items)
    async with wire_server(_responder(items)) as wire:
        deployments = {
            name: Deployment(
                provider="openai",
                model=name,
                api_key_env=WIRE_KEY_ENV,
                base_url=wire.openai_base_url,
                price=price,
                timeout_s=10,
            )
            for name, price in _PRICES.items()
        }
        async with keel_worker(
            server, {GRAPH: build_graph()}, deployments=deployments, routes=_routes()
        ) as worker:
            outcomes = []
            for config in _configs():
                progress(f"cascade: {config.name}, {len(items)} items")
                outcomes.append(await _run_config(worker, config, items))
    return Cascade(items, outcomes)
