"""Scenario 5: throughput with many runs in flight, raw plugin against Keel.

Batches of `--concurrency` runs start at once; runs/s is all measured runs over the
time their batches took. On two cores both the worker and the server are CPU-bound.
"""

from bench._graph import GRAPH, build_graph
from bench._harness import Options, Row, concurrent, keel_worker, progress, server_label
from bench.keel_workflow import run_keel
from bench.raw_plugin import raw_worker, run_raw
from cli.devserver import DevServer

__all__ = ["run"]


async def run(opts: Options, server: DevServer) -> list[Row]:
    """Runs/s of the raw plugin, then of Keel (with its journal), on `server`."""
    label = server_label(server)
    each = f"{opts.concurrency} concurrent × {opts.batches}"
    progress(f"throughput, raw plugin, {each}")
    async with raw_worker(server) as (client, task_queue):
        raw_rate, raw_latency = await concurrent(lambda: run_raw(client, task_queue), opts)
    progress(f"throughput, Keel AgentWorkflow, {each}")
    async with keel_worker(server, {GRAPH: build_graph()}) as worker:
        keel_rate, keel_latency = await concurrent(lambda: run_keel(worker), opts)
    return [
        Row(
            key="throughput-raw",
            scenario=f"raw plugin, {opts.concurrency} concurrent",
            server=label,
            per_node=None,
            per_run=raw_latency,
            notes=f"**{raw_rate:.1f} runs/s**; p95 {raw_latency.p95_ms:.0f} ms/run",
        ),
        Row(
            key="throughput-keel",
            scenario=f"Keel AgentWorkflow, {opts.concurrency} concurrent",
            server=label,
            per_node=None,
            per_run=keel_latency,
            notes=f"**{keel_rate:.1f} runs/s**; journal on; p95 {keel_latency.p95_ms:.0f} ms/run",
        ),
    ]
