"""Scenario 3: the same graph run by Keel's `AgentWorkflow`, with and without the journal.

The worker is wired like `worker/main.py` (see `bench._harness.keel_worker`); the graph
is registered under the agent name `bench5`. Comparing with the raw plugin on the tuned
server gives Keel's own cost: the in-memory checkpointer, `astream` with task events,
`aget_state`, the search-attribute upsert and, with the journal, one SQLite row per
activity.
"""

from bench._graph import GRAPH, NODES, bench_admission, build_graph, check_result
from bench._harness import (
    KeelWorker,
    Options,
    Row,
    keel_worker,
    progress,
    sequential,
    server_label,
)
from cli.devserver import DevServer

__all__ = ["run", "run_keel"]


async def run_keel(worker: KeelWorker) -> None:
    """One run of the bench graph through AgentWorkflow, start to result."""
    check_result(await worker.run(bench_admission()))


async def run(opts: Options, server: DevServer) -> list[Row]:
    """Sequential AgentWorkflow runs, with the StepJournal and then without it."""
    rows: list[Row] = []
    for journal in (True, False):
        progress(f"Keel AgentWorkflow, journal {'on' if journal else 'off'}")
        async with keel_worker(server, {GRAPH: build_graph()}, journal=journal) as worker:
            per_run, cpu = await sequential(lambda w=worker: run_keel(w), opts)
            rows_written = await worker.journal_rows()
        what = f"StepJournal on ({rows_written} rows)" if journal else "no StepJournal"
        rows.append(
            Row(
                key="keel" if journal else "keel-nojournal",
                scenario="Keel AgentWorkflow",
                server=server_label(server),
                per_node=per_run.per(NODES),
                per_run=per_run,
                notes=f"{what}; p95 {per_run.p95_ms:.0f} ms/run; bench cpu {cpu * 1000:.0f} ms/run",
            )
        )
    return rows
