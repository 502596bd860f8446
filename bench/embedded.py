"""Scenario 7: the embedded stack under load, as `keel up` runs it.

Real processes: the tuned dev server, one `keel worker` and one `keel api` (each started
like `keel up` starts them, with the default workflow cache), sharing one SQLite file;
they are launched by `tests.stack.Stack`, the launcher of the fault-injection tests.
Runs go through the API (`POST /v1/runs`), results are awaited on Temporal (a long poll,
no API polling), so runs/s is what an application sees end to end.

- `support` runs/s at each `--stack-concurrency` level: that many runs in flight at once
  (one batch), and activities/s (rows of the step journal, local activities included);
  optionally again with the `local` model's calls as activities of their own (through the
  task queue) rather than as local activities, its default; and with two `keel worker`
  processes, since one Python process runs workflows on one core at a time, on SQLite and
  on PostgreSQL (the layout of `docker-compose.yml`; PostgreSQL from `pgserver`).
- `POST /v1/runs` latency with `--post-clients` clients:
  - sending one request after another, as fast as answers come (a closed loop: latency
    is then clients ÷ rate, whatever the rate), beside the same clients starting the same
    workflow with Temporal's client directly, the floor this dev server sets;
  - sending at a steady rate, 80 % of the support runs/s measured before (an open loop:
    each request at its own random moment, Poisson arrivals), so the stack also runs every
    run it accepts, as in production.
- Review decision → run resumed: the time from sending a decision until the API answers
  (the `decide` Update returns once the workflow has taken the decision and closed the
  review, i.e. the run is running again), sequential.
- Resident memory (VmRSS from /proc) summed over the dev server, the worker and the API
  and their children: idle after warm-up, and the peak sampled under the largest load.
  And the embedded stack as `keel up` runs it, its own dev server as a child and the worker
  and the API in one process: idle after a few runs.

Every figure carries the machine's load average when it was taken: the machine may be
shared, and a busy neighbour shows up there.
"""

import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from bench._harness import Options, Row, Stats, journal_rows, progress, server_label
from bench.memory import children, load_average, peak_rss, resident_by_process, resident_mb, rss_mb
from keel.db import Database, create_engine
from keel.devserver import DevServer, free_port
from keel.schemas.runs import RunInput, RunResult
from keel.search_attributes import KEEL_AGENT, KEEL_STATUS
from keel.settings import LOCAL_DEPLOYMENT, Settings
from tests.stack import Stack, local_postgres, wait_status
from worker.temporal import connect
from workflows.agent import AgentWorkflow

__all__ = [
    "CONFIDENT",
    "TARGETS",
    "UNSURE",
    "EmbeddedStack",
    "Load",
    "Starts",
    "embedded_stack",
    "keel_up_idle",
    "run",
]

CONFIDENT = "How do I reset my password?"
"""Answered without review by the keyless `local` model."""
UNSURE = "it doesn't work"
"""Escalated to a reviewer (too vague to answer with confidence)."""

TARGETS = {
    "runs_per_s": 25.0,
    "post_p99_ms": 50.0,
    "resume_p50_ms": 200.0,
    "idle_mb": 450.0,
}
"""What the embedded stack should reach on 2 cores."""


@dataclass
class EmbeddedStack:
    """The processes of one embedded deployment and clients to drive it."""

    stack: Stack
    server: DevServer
    client: Client
    http: httpx.AsyncClient

    @property
    def pids(self) -> list[int]:
        """The dev server, the worker and the API: every process this bench started."""
        return children(os.getpid())

    async def journal_rows(self) -> int:
        """Activity executions the worker journaled so far."""
        url = self.stack.settings.get(
            "KEEL_DATABASE_URL", f"sqlite+aiosqlite:///{self.stack.db_file}"
        )
        database = Database(create_engine(url))
        try:
            return await journal_rows(database.sessions)
        finally:
            await database.dispose()

    async def start(self, question: str) -> str:
        """`POST /v1/runs` a support question; the run's id."""
        response = await self.http.post(
            "/v1/runs", json={"agent": "support", "input": {"question": question}}
        )
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/runs answered {response.status_code}: {response.text}")
        return response.json()["run_id"]

    async def finish(self, run_id: str) -> RunResult:
        """The run's result (a long poll on Temporal)."""
        return await self.client.get_workflow_handle_for(AgentWorkflow.run, run_id).result()

    async def support_run(self) -> None:
        """One confident support run, start to result."""
        result = await self.finish(await self.start(CONFIDENT))
        if result.status != "completed" or result.outcome.reviewed:
            raise RuntimeError(f"the support run did not complete without review: {result!r}")


@asynccontextmanager
async def embedded_stack(
    server: DevServer, workers: int = 1, **settings: str
) -> AsyncIterator[EmbeddedStack]:
    """`workers` worker processes and an API process on `server`, their state in a
    temporary directory."""
    with tempfile.TemporaryDirectory(prefix="keel-bench-stack-") as tmp:
        # The default workflow cache, as `keel up` runs it (tests replay every task).
        stack = Stack(
            server.address,
            Path(tmp),
            {"KEEL_WORKER_MAX_CACHED_WORKFLOWS": str(Settings().worker_max_cached_workflows)}
            | settings,
        )
        try:
            for _ in range(workers):
                await stack.start_worker()
            await stack.start_api()
            client = await connect(Settings(temporal_address=server.address, data_dir=Path(tmp)))
            limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
            async with httpx.AsyncClient(
                base_url=stack.api_url, timeout=120, limits=limits
            ) as http:
                yield EmbeddedStack(stack, server, client, http)
        finally:
            stack.stop_all()


async def keel_up_idle(runs: int = 5) -> tuple[float, dict[str, float], str]:
    """`keel up` alone: resident MB idle after `runs` support runs, per part, and the load."""
    with tempfile.TemporaryDirectory(prefix="keel-bench-up-") as tmp:
        settings = {
            "KEEL_TEMPORAL_UI_PORT": str(free_port()),
            "KEEL_WORKER_MAX_CACHED_WORKFLOWS": str(Settings().worker_max_cached_workflows),
        }
        stack = Stack(f"127.0.0.1:{free_port()}", Path(tmp), settings)
        try:
            up = await stack.start_up()
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
                for _ in range(runs):
                    response = await http.post(
                        "/v1/runs", json={"agent": "support", "input": {"question": CONFIDENT}}
                    )
                    await wait_status(http, response.json()["run_id"], {"completed"})
            await asyncio.sleep(2)
            parts = {"keel up": rss_mb(up.pid), "temporal": resident_mb(children(up.pid))}
            return sum(parts.values()), parts, load_average()
        finally:
            stack.stop_all()


@dataclass
class Load:
    """Throughput at one concurrency level."""

    concurrency: int
    runs_per_s: float
    activities_per_s: float
    latency: Stats
    load: str
    peak_mb: float = 0.0


async def _throughput(stack: EmbeddedStack, concurrency: int) -> Load:
    """`concurrency` support runs started at once (after a warm-up batch of 10)."""
    await asyncio.gather(*(stack.support_run() for _ in range(10)))
    await asyncio.sleep(0.5)  # the journal writes in batches: let the warm-up's land

    async def timed() -> float:
        start = time.perf_counter()
        await stack.support_run()
        return time.perf_counter() - start

    rows = await stack.journal_rows()
    with peak_rss(stack.pids) as rss:
        start = time.perf_counter()
        latencies = await asyncio.gather(*(timed() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    await asyncio.sleep(0.5)
    activities = await stack.journal_rows() - rows
    return Load(
        concurrency,
        concurrency / elapsed,
        activities / elapsed,
        Stats(tuple(latencies)),
        load_average(),
        max(rss, default=0.0),
    )


@dataclass
class Starts:
    """Latencies of run starts, and the rate they were sent at."""

    latency: Stats
    per_s: float

    def p99_ms(self) -> float:
        return _quantile(self.latency, 99)


async def _timed(start: Callable[[], Awaitable[object]]) -> float:
    began = time.perf_counter()
    await start()
    return time.perf_counter() - began


async def _closed_loop(
    start: Callable[[], Awaitable[object]], clients: int, per_client: int
) -> Starts:
    """`clients` clients each sending `per_client` starts, each once the one before answered."""

    async def client() -> list[float]:
        return [await _timed(start) for _ in range(per_client)]

    began = time.perf_counter()
    per = await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - began
    return Starts(
        Stats(tuple(s for samples in per for s in samples)), clients * per_client / elapsed
    )


async def _open_loop(
    start: Callable[[], Awaitable[object]], per_s: float, seconds: float
) -> Starts:
    """Starts at `per_s` a second for `seconds`, each at a random moment (Poisson)."""
    draw = random.Random(8)
    moments, at = [], draw.expovariate(per_s)
    while at < seconds:
        moments.append(at)
        at += draw.expovariate(per_s)
    began = time.perf_counter()

    async def at_moment(moment: float) -> float:
        await asyncio.sleep(max(0.0, began + moment - time.perf_counter()))
        return await _timed(start)

    latencies = await asyncio.gather(*(at_moment(moment) for moment in moments))
    return Starts(Stats(tuple(latencies)), len(moments) / seconds)


def _raw_start(stack: EmbeddedStack) -> Callable[[], Awaitable[object]]:
    """A `support` run started with Temporal's client alone: no API, no audit entry."""
    settings = Settings()
    run = RunInput(
        agent="support",
        input={"question": CONFIDENT},
        review_threshold=settings.review_threshold,
        review_timeout_s=settings.review_timeout_s,
    )
    attributes = TypedSearchAttributes(
        [SearchAttributePair(KEEL_AGENT, "support"), SearchAttributePair(KEEL_STATUS, "running")]
    )

    async def start() -> object:
        return await stack.client.start_workflow(
            AgentWorkflow.run,
            run,
            id=f"bench-raw-{uuid.uuid4()}",
            task_queue=stack.stack.task_queue,
            search_attributes=attributes,
        )

    return start


async def _drain(stack: EmbeddedStack, timeout: float = 120.0) -> None:
    """Wait until no run is open: the POST scenario leaves its runs to the worker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = await stack.client.count_workflows("ExecutionStatus = 'Running'")
        if count.count == 0:
            return
        await asyncio.sleep(0.5)


async def _resume_latency(stack: EmbeddedStack, samples: int) -> tuple[Stats, Stats]:
    """Decision → resumed, and decision → completed, for `samples` escalated runs."""
    resumed, completed = [], []
    for _ in range(samples):
        run_id = await stack.start(UNSURE)
        review = None
        while review is None:
            view = (await stack.http.get(f"/v1/runs/{run_id}")).json()
            review = view.get("pending_review")
            if review is None:
                await asyncio.sleep(0.02)
        start = time.perf_counter()
        decided = await stack.http.post(
            f"/v1/reviews/{review['review_id']}/decision",
            json={"action": "approve", "action_hash": review.get("action_hash", "")},
        )
        resumed.append(time.perf_counter() - start)
        if decided.status_code != 200:
            raise RuntimeError(f"the decision was refused: {decided.text}")
        await stack.finish(run_id)
        completed.append(time.perf_counter() - start)
    return Stats(tuple(resumed)), Stats(tuple(completed))


@dataclass
class _Figures:
    idle_mb: float = 0.0
    idle_parts: dict[str, float] = field(default_factory=dict)
    idle_load: str = ""
    up_mb: float = 0.0
    up_parts: dict[str, float] = field(default_factory=dict)
    up_load: str = ""
    loads: list[Load] = field(default_factory=list)
    queued_loads: list[Load] = field(default_factory=list)
    two_worker_loads: list[Load] = field(default_factory=list)
    compose_loads: list[Load] = field(default_factory=list)
    starts: list[tuple[str, str, Starts, str]] = field(default_factory=list)
    """Start latencies: key, scenario, figures, load."""
    resumed: Stats | None = None
    completed: Stats | None = None
    resume_load: str = ""


async def _start_latencies(
    stack: EmbeddedStack, opts: Options, loads: list[Load]
) -> list[tuple[str, str, Starts, str]]:
    """`POST /v1/runs` beside Temporal's own start: `post_clients` clients in a closed loop,
    then at a steady 80 % of the first load's runs/s."""
    post, raw = (lambda: stack.start(CONFIDENT)), _raw_start(stack)
    clients, per_client = opts.post_clients, opts.post_per_client
    closed = f"{clients} clients, closed loop"
    plans = [
        (
            "post-latency",
            f"`POST /v1/runs`, {closed}",
            lambda: _closed_loop(post, clients, per_client),
        ),
        (
            "post-raw",
            f"Temporal's `start_workflow`, {closed}",
            lambda: _closed_loop(raw, clients, per_client),
        ),
    ]
    if loads:
        rate, seconds = 0.8 * loads[0].runs_per_s, opts.post_steady_s
        steady = f"a steady {rate:.0f}/s (Poisson arrivals)"
        plans += [
            (
                "post-steady",
                f"`POST /v1/runs` at {steady}",
                lambda: _open_loop(post, rate, seconds),
            ),
            (
                "post-raw-steady",
                f"Temporal's `start_workflow` at {steady}",
                lambda: _open_loop(raw, rate, seconds),
            ),
        ]
    measured = []
    for key, scenario, measure in plans:
        progress(f"embedded stack: {scenario}")
        starts = await measure()
        measured.append((key, scenario, starts, load_average()))
        await _drain(stack)  # the runs started here finish before the next figure
    return measured


def _queued_call_settings() -> dict[str, str]:
    local = LOCAL_DEPLOYMENT.model_copy(update={"local_activity": False})
    return {"KEEL_DEPLOYMENTS": json.dumps({"local": local.model_dump(mode="json")})}


async def run(opts: Options, server: DevServer) -> list[Row]:
    """Every embedded-stack figure, as rows of the main table."""
    label = f"embedded, {server_label(server).removeprefix('dev, ')}"
    figures = _Figures()
    progress("embedded stack: keel worker + keel api on the tuned dev server")
    async with embedded_stack(server) as stack:
        await asyncio.gather(*(stack.support_run() for _ in range(5)))
        await asyncio.sleep(2)
        figures.idle_mb, figures.idle_load = resident_mb(stack.pids), load_average()
        figures.idle_parts = resident_by_process(stack.pids)
        for concurrency in opts.stack_concurrency:
            progress(f"embedded stack: {concurrency} concurrent support runs")
            figures.loads.append(await _throughput(stack, concurrency))
        figures.starts = await _start_latencies(stack, opts, figures.loads)
        progress(f"embedded stack: review decision → resumed, {opts.resume_samples} runs")
        figures.resumed, figures.completed = await _resume_latency(stack, opts.resume_samples)
        figures.resume_load = load_average()
    progress("embedded stack: `keel up` idle")
    figures.up_mb, figures.up_parts, figures.up_load = await keel_up_idle()
    if opts.queued_model_calls:
        progress("embedded stack: `local` model calls through the task queue")
        async with embedded_stack(server, **_queued_call_settings()) as stack:
            figures.queued_loads = await _loads(stack, opts, "queued model calls")
    if opts.two_workers:
        progress("embedded stack: two `keel worker` processes")
        async with embedded_stack(server, workers=2) as stack:
            figures.two_worker_loads = await _loads(stack, opts, "two workers")
        progress("embedded stack: two workers on PostgreSQL, as docker-compose.yml runs them")
        with local_postgres() as url:
            async with embedded_stack(server, workers=2, KEEL_DATABASE_URL=url) as stack:
                figures.compose_loads = await _loads(stack, opts, "PostgreSQL, two workers")
    return _rows(figures, label)


async def _loads(stack: EmbeddedStack, opts: Options, what: str) -> list[Load]:
    await asyncio.gather(*(stack.support_run() for _ in range(5)))
    loads = []
    for concurrency in opts.stack_concurrency:
        progress(f"embedded stack ({what}): {concurrency} concurrent")
        loads.append(await _throughput(stack, concurrency))
    return loads


def _mark(value: float, target: float, *, at_most: bool) -> str:
    met = value <= target if at_most else value >= target
    return "✓" if met else "✗"


def _rows(f: _Figures, label: str) -> list[Row]:
    rows = []
    kinds = (
        (f.loads, "default", ""),
        (f.queued_loads, "model calls through the task queue", "-queued"),
        (f.two_worker_loads, "two `keel worker` processes", "-2-workers"),
        (f.compose_loads, "two workers on PostgreSQL, the compose layout", "-compose"),
    )
    for loads, how, suffix in kinds:
        for load in loads:
            rate = load.runs_per_s
            mark = _mark(rate, TARGETS["runs_per_s"], at_most=False)
            rows.append(
                Row(
                    key=f"stack-{load.concurrency}{suffix}",
                    scenario=f"support via API, {load.concurrency} concurrent ({how})",
                    server=label,
                    per_node=None,
                    per_run=load.latency,
                    notes=(
                        f"**{rate:.1f} runs/s** {mark} (target ≥ {TARGETS['runs_per_s']:.0f}); "
                        f"{load.activities_per_s:.0f} activities/s; p95 "
                        f"{load.latency.p95_ms:.0f} ms/run; peak RSS {load.peak_mb:.0f} MB; "
                        f"{load.load}"
                    ),
                )
            )
    for key, scenario, measured, load in f.starts:
        if measured is None:
            continue
        p99 = measured.p99_ms()
        rows.append(
            Row(
                key=key,
                scenario=scenario,
                server=label,
                per_node=None,
                per_run=measured.latency,
                notes=(
                    f"{measured.per_s:.0f} starts/s: p50 {measured.latency.median_ms:.1f} ms, "
                    f"**p99 {p99:.1f} ms** {_mark(p99, TARGETS['post_p99_ms'], at_most=True)} "
                    f"(target ≤ {TARGETS['post_p99_ms']:.0f}); "
                    f"{len(measured.latency.samples)} requests; {load}"
                ),
            )
        )
    if f.resumed is not None and f.completed is not None:
        p50 = f.resumed.median_ms
        rows.append(
            Row(
                key="resume-latency",
                scenario="review decision → run resumed",
                server=label,
                per_node=None,
                per_run=f.resumed,
                notes=(
                    f"**p50 {p50:.1f} ms** "
                    f"{_mark(p50, TARGETS['resume_p50_ms'], at_most=True)} "
                    f"(target ≤ {TARGETS['resume_p50_ms']:.0f}); p95 {f.resumed.p95_ms:.0f} ms; "
                    f"→ completed p50 {f.completed.median_ms:.0f} ms; "
                    f"{len(f.resumed.samples)} runs; {f.resume_load}"
                ),
            )
        )
    peak = max((load.peak_mb for load in f.loads), default=0.0)
    rows.append(
        _memory_row(
            "rss",
            "dev server + `keel worker` + `keel api`",
            label,
            f.idle_mb,
            f.idle_parts,
            f"under load (peak) {peak:.0f} MB; {f.idle_load}",
        )
    )
    if f.up_parts:
        rows.append(
            _memory_row(
                "rss-up",
                "`keel up` (dev server + worker and API in one process)",
                "embedded, its own dev server",
                f.up_mb,
                f.up_parts,
                f.up_load,
            )
        )
    return rows


def _memory_row(
    key: str, what: str, server: str, idle_mb: float, parts: dict[str, float], more: str
) -> Row:
    by_part = ", ".join(f"{name} {mb:.0f}" for name, mb in sorted(parts.items()))
    return Row(
        key=key,
        scenario=f"resident memory: {what}",
        server=server,
        per_node=None,
        per_run=None,
        notes=(
            f"**idle {idle_mb:.0f} MB** {_mark(idle_mb, TARGETS['idle_mb'], at_most=True)} "
            f"(target ≤ {TARGETS['idle_mb']:.0f}): {by_part}; {more}"
        ),
    )


def _quantile(stats: Stats, q: int) -> float:
    if len(stats.samples) < 2:
        return stats.samples[0] * 1000
    return statistics.quantiles(stats.samples, n=100, method="inclusive")[q - 1] * 1000
