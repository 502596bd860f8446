"""Scenario 4: a full `support` run through `AgentWorkflow`, as `keel up` would serve it.

The worker registers `worker.agents.build_graphs(...)` (the installed agents), like
`worker/main.py`. The question is answered without review: classify, retrieve and
answer run as activities on the keyless `local` model; check and finalize in the workflow.
"""

from bench._harness import (
    KeelWorker,
    Options,
    Row,
    admitted,
    keel_worker,
    progress,
    sequential,
    server_label,
)
from cli.devserver import DevServer
from keel.settings import Settings
from worker.agents import build_graphs

__all__ = ["QUESTION", "run"]

QUESTION = "How do I reset my password?"


async def _run_support(worker: KeelWorker) -> None:
    # A run that escalated would wait for its deadline: keep it short, and fail loudly.
    result = await worker.run(admitted("support", QUESTION, review_timeout_s=30))
    if result.status != "completed" or result.outcome.reviewed or not result.outcome.answer:
        raise RuntimeError(f"the support run did not complete without review: {result!r}")


async def run(opts: Options, server: DevServer) -> list[Row]:
    """Sequential support runs."""
    progress("support run through AgentWorkflow")
    async with keel_worker(server, build_graphs(Settings())) as worker:
        per_run, cpu = await sequential(lambda: _run_support(worker), opts)
    return [
        Row(
            key="support",
            scenario="support run",
            server=server_label(server),
            per_node=None,
            per_run=per_run,
            notes=(
                f"3 activity + 2 workflow nodes; p95 {per_run.p95_ms:.0f} ms/run; "
                f"bench cpu {cpu * 1000:.0f} ms/run"
            ),
        )
    ]
