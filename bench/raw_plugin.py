"""Scenario 2: the raw `temporalio-langgraph` plugin, no Keel.

A minimal workflow of our own calls `graph("bench5").compile().ainvoke(...)`; every node
is an activity. It runs on an untuned and on a tuned dev server, so the table shows
what the tuning buys. The module is imported again in the workflow sandbox for every
run, so everything but `temporalio.workflow` comes in passed through.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.langgraph import LangGraphPlugin, graph
    from temporalio.worker import Worker

    from bench._graph import GRAPH, NODES, bench_admission, build_graph, check_result
    from bench._harness import Options, Row, progress, sequential, server_label, workflow_id
    from cli.devserver import DevServer
    from keel.schemas.runs import AgentState, RunInput, RunResult

__all__ = ["RawGraphWorkflow", "raw_worker", "run"]


@workflow.defn(name="BenchRawGraph")
class RawGraphWorkflow:
    """The least a workflow can do to run a registered graph."""

    @workflow.run
    async def run(self, input: RunInput) -> RunResult:
        state = AgentState(input=input.input, review_threshold=input.policy.threshold)
        out = await graph(input.agent).compile().ainvoke(state.model_dump(mode="json"))
        return RunResult.model_validate(out["result"])


@asynccontextmanager
async def raw_worker(server: DevServer) -> AsyncIterator[tuple[Client, str]]:
    """A worker with only the LangGraph plugin and the pydantic data converter."""
    client = await Client.connect(server.address, data_converter=pydantic_data_converter)
    task_queue = workflow_id("raw-queue")
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[RawGraphWorkflow],
        plugins=[LangGraphPlugin(graphs={GRAPH: build_graph()})],
    )
    async with worker:
        yield client, task_queue


async def run_raw(client: Client, task_queue: str) -> None:
    """One run, start_workflow to result."""
    handle = await client.start_workflow(
        RawGraphWorkflow.run, bench_admission().input, id=workflow_id("raw"), task_queue=task_queue
    )
    check_result(await handle.result())


async def run(opts: Options, server: DevServer) -> list[Row]:
    """Sequential runs of the raw workflow on `server`."""
    label = server_label(server)
    progress(f"raw plugin on the {label} server")
    async with raw_worker(server) as (client, task_queue):
        per_run, cpu = await sequential(lambda: run_raw(client, task_queue), opts)
    return [
        Row(
            key="raw-tuned" if server.tuned else "raw-untuned",
            scenario="raw plugin",
            server=label,
            per_node=per_run.per(NODES),
            per_run=per_run,
            notes=f"p95 {per_run.p95_ms:.0f} ms/run; bench cpu {cpu * 1000:.0f} ms/run",
        )
    ]
