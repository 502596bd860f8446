"""Every run a test made replays from its history: the suite's check for non-determinism.

Test workers cache their runs as production workers do: a worker that replayed every task
(`max_cached_workflows=0`) would cancel each run's local activities in flight whenever
another task needed the one slot, which no deployment does. Instead, when a test's worker
or stack is done, each workflow on its task queue is fetched and replayed with the graphs
and data converter that worker had; a change that would break runs in flight fails there.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langgraph.graph import StateGraph
from temporalio.client import Client
from temporalio.worker import Replayer

from keel.settings import Settings
from keel.temporal.connection import connect, keel_data_converter
from keel.testing.stack import Stack
from worker.agents import build_graphs, graph_plugins


def replayer(
    settings: Settings, graphs: dict[str, StateGraph[Any, Any, Any, Any]] | None = None
) -> Replayer:
    """A replayer with the graphs (or `graphs`) and payload converter of a worker on `settings`."""
    plugins = graph_plugins(
        build_graphs(settings) if graphs is None else graphs,
        data_converter=keel_data_converter(settings),
    )
    return Replayer(workflows=[], plugins=plugins)


async def assert_runs_replay(settings: Settings, client: Client | None = None) -> None:
    """Replay every workflow on `settings`' task queue; fail with the ones that do not."""
    client = client or await connect(settings)
    listed = client.list_workflows(f"TaskQueue = '{settings.task_queue}'")
    results = await replayer(settings).replay_workflows(
        listed.map_histories(), raise_on_replay_failure=False
    )
    failures = {run: str(err) for run, err in results.replay_failures.items()}
    assert not failures, f"runs that do not replay from their history: {failures}"


async def assert_stack_runs_replay(stack: Stack) -> None:
    """`assert_runs_replay` with the settings the stack's processes read."""
    with _environment(stack.env()):
        settings = Settings()
    await assert_runs_replay(settings)


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
