"""Resident memory and load of benchmark processes, read from /proc (Linux)."""

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "children",
    "load_average",
    "peak_rss",
    "resident_by_process",
    "resident_mb",
    "rss_mb",
]


def load_average() -> str:
    """The 1-minute load average and the CPU count, e.g. `load 3.2/2 cpu`."""
    return f"load {os.getloadavg()[0]:.1f}/{len(os.sched_getaffinity(0))} cpu"


def children(pid: int) -> list[int]:
    """The direct child processes of `pid`."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def rss_mb(pid: int) -> float:
    """VmRSS of `pid` alone, in MB (0 once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _tree(pids: list[int]) -> set[int]:
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += children(pid)
    return seen


def resident_mb(pids: list[int]) -> float:
    """VmRSS of `pids` and all their descendants, in MB (each process counted once)."""
    return sum(rss_mb(pid) for pid in _tree(pids))


def resident_by_process(pids: list[int]) -> dict[str, float]:
    """MB of VmRSS per process of `pids` (with its descendants), named by its command."""
    named: dict[str, float] = {}
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [Path(a.decode(errors="replace")).name for a in argv if a]
        name = "temporal" if words and words[0] == "temporal" else " ".join(words[1:3])
        named[name] = named.get(name, 0.0) + resident_mb([pid])
    return named


@contextmanager
def peak_rss(pids: list[int], every: float = 0.25) -> Iterator[list[float]]:
    """Sample the summed RSS from the event loop while the block runs; yields the samples."""
    samples: list[float] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            samples.append(resident_mb(pids))
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                pass

    task = asyncio.get_running_loop().create_task(sample())
    try:
        yield samples
    finally:
        stop.set()
        task.cancel()
