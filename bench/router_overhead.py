"""Scenario 6: what the model router itself costs per call, the provider excluded.

A tiny agent graph (`bench-router`) runs under Keel's `AgentWorkflow`: its one
workflow-side node calls `run_context().router.complete(...)` `--router-calls` times with
distinct steps, so each call is a `model.call` activity; the last node sets `result`. The route is
`fixed`, to an `openai` deployment pointing at a `WireServer` that answers every request
at once with the same scripted reply, or to the keyless `local` provider (no HTTP at all).
Against it: the same number of direct `openai.AsyncOpenAI(..., max_retries=0)` calls to
the same WireServer from the bench process.

Per call through Keel is marginal: (run with N calls − median run with no call) ÷ N, so
the run's own start, graph and result cost is left out; the route's one `model.plan`
local activity is included, spread over the N calls. The difference between Keel and the
direct SDK is what routing and the durable activity add to every model call.
"""

import os
import statistics
from dataclasses import dataclass
from typing import Any

import openai
from langgraph.graph import StateGraph
from pydantic import BaseModel, Field

from bench._graph import workflow_pair
from bench._harness import (
    WIRE_KEY_ENV,
    KeelWorker,
    Options,
    Stats,
    admitted,
    keel_worker,
    progress,
    sequential,
    server_label,
    wire_server,
)
from cli.devserver import DevServer
from keel.agents import AgentSpec
from keel.schemas.model import Message, ModelRequest
from keel.schemas.routing import Deployment, Price, Route
from keel.schemas.runs import AgentState, Outcome, RunResult
from keel.testing.recording import WireRequest
from keel.testing.replies import Reply, Usage
from keel.testing.server import WireServer
from workflows.run_context import run_context

__all__ = [
    "GRAPH",
    "SPEC",
    "Overhead",
    "RouterInput",
    "RouterState",
    "build_graph",
    "calls",
    "finish",
    "run",
]

GRAPH = "bench-router"
"""The graph's agent name."""

_MODEL = "gpt-4o-mini"
_PROMPT = "ping"
_MAX_TOKENS = 5
_REPLY = Reply(text="pong", usage=Usage(input_tokens=8, output_tokens=1), confidence=0.9)
_PRICE = Price(input=0.15, output=0.6)


class RouterInput(BaseModel):
    """The run's input: which route, how many calls."""

    route: str
    calls: int = Field(ge=0)


class RouterState(AgentState):
    """How many calls the node made."""

    made: int = 0


async def calls(state: RouterState) -> dict[str, Any]:
    """Ask the run's route `input["calls"]` times, one step each."""
    run = RouterInput.model_validate(state.input)
    request = ModelRequest(
        route=run.route,
        messages=[Message(role="user", content=_PROMPT)],
        max_output_tokens=_MAX_TOKENS,
    )
    for i in range(run.calls):
        await run_context().router.complete(request, step=f"call-{i}")
    return {"made": run.calls}


def finish(state: RouterState) -> dict[str, Any]:
    """Report how many calls were made."""
    outcome = Outcome(answer=f"{state.made} calls", confidence=1.0)
    return {"result": RunResult(status="completed", outcome=outcome)}


def build_graph() -> StateGraph[Any, Any, Any, Any]:
    """calls → finish, both in the workflow."""
    return workflow_pair(RouterState, ("calls", calls), finish)


SPEC = AgentSpec(
    name=GRAPH,
    description="Makes a number of model calls through a route.",
    input_model=RouterInput,
    text_field="route",
    graph="bench.router_overhead:build_graph",
)
"""The graph as an agent, for admitting its runs."""


def _responder(request: WireRequest) -> Reply:
    return _REPLY


async def _keel_run(worker: KeelWorker, route: str, count: int) -> None:
    raw = RouterInput(route=route, calls=count).model_dump()
    result = await worker.run(admitted(SPEC, raw, review_threshold=0.5, review_timeout_s=60))
    steps = {entry.step for entry in result.ledger.entries}
    if result.outcome.answer != f"{count} calls" or len(steps) != count:
        raise RuntimeError(f"the router bench graph returned {result!r}")


def _marginal(runs: Stats, baseline: Stats, count: int) -> Stats:
    """Per call: each run's time above the no-call median, divided by `count`."""
    floor = statistics.median(baseline.samples)
    return Stats(tuple((s - floor) / count for s in runs.samples))


async def _direct(wire: WireServer, opts: Options) -> Stats:
    """Batches of `router_calls` SDK calls, each sample one batch ÷ its calls."""
    key = os.environ[WIRE_KEY_ENV]
    client = openai.AsyncOpenAI(base_url=wire.openai_base_url, api_key=key, max_retries=0)
    count = opts.router_calls
    try:

        async def batch() -> None:
            for i in range(count):
                # The arguments Keel's OpenAI adapter sends for this request.
                await client.chat.completions.create(
                    model=_MODEL,
                    messages=[{"role": "user", "content": _PROMPT}],
                    max_completion_tokens=_MAX_TOKENS,
                    logprobs=True,
                    extra_headers={"Idempotency-Key": f"bench-direct:{i}"},
                )

        per_batch, _ = await sequential(batch, opts)
        return per_batch.per(count)
    finally:
        await client.close()


@dataclass(frozen=True)
class Overhead:
    """The scenario's figures, per model call."""

    server: str
    calls: int
    direct: Stats
    keel_openai: Stats
    keel_local: Stats
    baseline: Stats

    def render(self) -> str:
        """A small markdown table of its own: the main table's columns are per node."""
        diff = self.keel_openai.median_ms - self.direct.median_ms
        rows = [
            (
                "direct `openai.AsyncOpenAI` → WireServer",
                self.direct,
                "from the bench process, no Temporal",
            ),
            (
                "Keel router, `fixed` → `openai` (WireServer)",
                self.keel_openai,
                "AgentWorkflow, one `model.call` activity per call, journal on",
            ),
            (
                "Keel router, `fixed` → `local`",
                self.keel_local,
                "no provider HTTP: routing and the activity, plus a trivial local answer",
            ),
        ]
        lines = [
            f"Model router overhead per call ({self.server} server; {self.calls} calls per "
            f"run; Keel per call = (run − no-call run median {self.baseline.median_ms:.1f} ms)"
            f" ÷ {self.calls}):",
            "",
            "| path | ms/call median | ms/call p95 | notes |",
            "| --- | ---: | ---: | --- |",
        ]
        for name, stats, notes in rows:
            lines.append(f"| {name} | {stats.median_ms:.2f} | {stats.p95_ms:.2f} | {notes} |")
        lines.append(
            f"| **routing + durable activity** (Keel openai − direct) | **{diff:.2f}** | — | "
            f"{self.keel_openai.median_ms / self.direct.median_ms:.1f}× the bare SDK call |"
        )
        return "\n".join(lines)


async def run(opts: Options, server: DevServer) -> Overhead:
    """Direct SDK calls, then Keel runs with no call, N calls to the WireServer, N local."""
    count = opts.router_calls
    async with wire_server(_responder) as wire:
        deployments = {
            "wire": Deployment(
                provider="openai",
                model=_MODEL,
                api_key_env=WIRE_KEY_ENV,
                base_url=wire.openai_base_url,
                price=_PRICE,
                timeout_s=10,
            )
        }
        routes = {"wire": Route(candidates=["wire"]), "local": Route(candidates=["local"])}
        progress(f"router overhead: direct SDK calls, {count} per sample")
        direct = await _direct(wire, opts)
        async with keel_worker(
            server, {GRAPH: build_graph()}, deployments=deployments, routes=routes
        ) as worker:
            progress("router overhead: Keel runs with no model call")
            baseline, _ = await sequential(lambda: _keel_run(worker, "local", 0), opts)
            progress(f"router overhead: Keel runs with {count} calls to the WireServer")
            keel_openai, _ = await sequential(lambda: _keel_run(worker, "wire", count), opts)
            progress(f"router overhead: Keel runs with {count} local calls")
            keel_local, _ = await sequential(lambda: _keel_run(worker, "local", count), opts)
    return Overhead(
        server=server_label(server),
        calls=count,
        direct=direct,
        keel_openai=_marginal(keel_openai, baseline, count),
        keel_local=_marginal(keel_local, baseline, count),
        baseline=baseline,
    )
