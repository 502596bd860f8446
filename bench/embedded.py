"""Scenario 7: the embedded stack under load, as `keel up` runs it.

Real processes (`bench.stack`): the tuned dev server, one `keel worker` and one `keel api`,
sharing one SQLite file. Runs go through the API (`POST /v1/runs`), results are awaited on
Temporal (a long poll, no API polling), so runs/s is what an application sees end to end.

- `support` runs/s at each `--stack-concurrency` level: that many runs in flight at once
  (one batch), and activities/s (rows of the step journal, local activities included);
  optionally again with the `local` model's calls as activities of their own (through the
  task queue) rather than as local activities, its default; and with two `keel worker`
  processes, since one Python process runs workflows on one core at a time, on SQLite and
  on PostgreSQL (the layout of `docker-compose.yml`; PostgreSQL from `pgserver`).
- `POST /v1/runs` latency beside Temporal's own start (`bench.starts`): `--post-clients`
  clients in a closed loop, and at a steady 80 % of the support runs/s measured before.
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
import time
from dataclasses import dataclass, field

from bench._harness import Options, Row, Stats, progress, server_label
from bench.memory import load_average, peak_rss, resident_by_process, resident_mb
from bench.stack import UNSURE, EmbeddedStack, UpMemory, embedded_stack, keel_up_memory
from bench.starts import Starts, start_latencies
from cli.devserver import DevServer
from keel.settings import LOCAL_DEPLOYMENT
from keel.testing.stack import local_postgres

__all__ = ["TARGETS", "Load", "run"]

TARGETS = {
    "runs_per_s": 25.0,
    "post_p99_ms": 50.0,
    "resume_p50_ms": 200.0,
    "idle_mb": 450.0,
}
"""What the embedded stack should reach on 2 cores."""


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
    up: UpMemory | None = None
    loads: list[Load] = field(default_factory=list)
    queued_loads: list[Load] = field(default_factory=list)
    two_worker_loads: list[Load] = field(default_factory=list)
    compose_loads: list[Load] = field(default_factory=list)
    starts: list[tuple[str, str, Starts, str]] = field(default_factory=list)
    """Start latencies: key, scenario, figures, load."""
    resumed: Stats | None = None
    completed: Stats | None = None
    resume_load: str = ""


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
        first = figures.loads[0].runs_per_s if figures.loads else None
        figures.starts = await start_latencies(stack, opts, first)
        progress(f"embedded stack: review decision → resumed, {opts.resume_samples} runs")
        figures.resumed, figures.completed = await _resume_latency(stack, opts.resume_samples)
        figures.resume_load = load_average()
    progress("embedded stack: `keel up` idle")
    figures.up = await keel_up_memory()
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
    if f.up is not None:
        rows.append(
            _memory_row(
                "rss-up",
                "`keel up` (dev server + worker and API in one process)",
                "embedded, its own dev server",
                f.up.idle_mb,
                f.up.parts,
                f"{f.up.embedding_mb:.0f} MB once a collection embeds (the built-in model "
                f"loaded); {f.up.load}",
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
