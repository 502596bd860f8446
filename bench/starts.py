"""How long a run start takes: `POST /v1/runs` beside Temporal's own `start_workflow`.

Clients in a closed loop (each sends once the one before was answered: latency is then
clients ÷ rate) and at a steady rate (each request at its own random moment, Poisson
arrivals, while the stack runs every run it accepts).
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench._harness import Options, Stats, admitted, progress
from bench.memory import load_average
from bench.stack import CONFIDENT, EmbeddedStack, drain
from keel.run_client import RunClient

__all__ = ["Starts", "start_latencies"]


@dataclass
class Starts:
    """Latencies of run starts, and the rate they were sent at."""

    latency: Stats
    per_s: float

    def p99_ms(self) -> float:
        return self.latency.percentile_ms(99)


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
    """A `support` run admitted and started by the core's run client: no API, no audit entry."""
    runs = RunClient(stack.client)

    async def start() -> object:
        return await runs.start(admitted("support", CONFIDENT), stack.stack.task_queue)

    return start


async def start_latencies(
    stack: EmbeddedStack, opts: Options, runs_per_s: float | None
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
    if runs_per_s is not None:
        rate, seconds = 0.8 * runs_per_s, opts.post_steady_s
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
        await drain(stack)  # the runs started here finish before the next figure
    return measured
