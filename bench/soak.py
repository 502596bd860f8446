"""`python -m bench soak`: many support runs through the embedded stack; nothing may be lost.

A tuned dev server, one `keel worker` and one `keel api` (as `keel up` runs them). Runs
start through `POST /v1/runs` (each with its own idempotency key), `--concurrency` in
flight; every tenth asks a question too vague to answer, so about 10 % escalate. A
scripted reviewer works the queue through the API (`GET /v1/reviews?status=pending`,
then an approval bound to each review's `action_hash`), as a person would.

At the end it checks, and exits non-zero unless all hold:
- every run finished `completed`, and exactly the escalated ones were reviewed;
- every review was decided once: one accepted decision per review, none refused as a
  second decision, one `reviews` row per escalated run, all `approved`;
- the step journal shows each review opened once and closed once.
"""

import argparse
import asyncio
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench._harness import dev_server, progress
from bench.memory import load_average, resident_mb
from bench.stack import CONFIDENT, UNSURE, EmbeddedStack, embedded_stack

__all__ = ["SoakOptions", "main", "soak"]


@dataclass(frozen=True)
class SoakOptions:
    """How big the soak is."""

    runs: int = 1000
    """Runs started in all."""
    concurrency: int = 50
    """Runs in flight at once."""
    escalate_every: int = 10
    """Every n-th run asks a question that escalates."""


@dataclass
class _Reviewer:
    """Approves every pending review it finds, once; counts what the API answered."""

    stack: EmbeddedStack
    decided: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def work(self) -> None:
        while not self.done.is_set():
            try:
                await self._round()
            except httpx.TransportError as err:  # the API restarting: try again
                self.refused.append(f"transport error: {err!r}")
                await asyncio.sleep(0.5)

    async def _round(self) -> None:
        page = await self.stack.http.get("/v1/reviews", params={"status": "pending", "limit": 200})
        page.raise_for_status()
        pending = [r for r in page.json()["reviews"] if r["id"] not in self.decided]
        for review in pending:
            answer = await self.stack.http.post(
                f"/v1/reviews/{review['id']}/decision",
                json={"action": "approve", "action_hash": review["action_hash"]},
            )
            if answer.status_code == 200:
                self.decided[review["id"]] += 1
            else:
                self.refused.append(f"{review['id']}: {answer.status_code} {answer.text}")
        if not pending:
            await asyncio.sleep(0.2)


async def soak(opts: SoakOptions) -> list[str]:
    """Run the soak; the problems found (none: nothing was lost)."""
    async with dev_server(tuned=True) as server, embedded_stack(server) as stack:
        reviewer = _Reviewer(stack)
        reviewing = asyncio.create_task(reviewer.work())
        slots = asyncio.Semaphore(opts.concurrency)
        escalated = {i for i in range(opts.runs) if i % opts.escalate_every == 0}
        results: dict[int, tuple[str, str, bool]] = {}
        errors: list[str] = []

        async def one(i: int) -> None:
            try:
                await start_and_finish(i)
            except Exception as err:  # a lost run is a finding, not the end of the soak
                errors.append(f"run {i}: {err!r}")

        async def start_and_finish(i: int) -> None:
            async with slots:
                question = UNSURE if i in escalated else CONFIDENT
                response = await stack.http.post(
                    "/v1/runs",
                    json={
                        "agent": "support",
                        "input": {"question": question},
                        "idempotency_key": f"soak-{i}",
                    },
                )
                response.raise_for_status()
                run_id = response.json()["run_id"]
                result = await stack.finish(run_id)
                results[i] = (run_id, result.status, result.outcome.reviewed)
                if len(results) % 100 == 0:
                    progress(f"soak: {len(results)}/{opts.runs} finished; {load_average()}")

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(opts.runs)))
        elapsed = time.perf_counter() - started
        reviewer.done.set()
        await reviewing
        rss = resident_mb(stack.pids)
        await asyncio.sleep(1)  # the journal writes in batches
        with sqlite3.connect(stack.stack.db_file) as db:
            rows = db.execute("SELECT id, run_id, status FROM reviews").fetchall()
            journal = Counter(
                dict(
                    db.execute(
                        "SELECT activity, count(*) FROM steps WHERE outcome = 'completed' "
                        "AND activity IN ('review.open', 'review.close') GROUP BY activity"
                    ).fetchall()
                )
            )
    print(
        f"soak: {opts.runs} runs ({len(escalated)} escalated) in {elapsed:.0f} s, "
        f"{opts.runs / elapsed:.1f} runs/s with {opts.concurrency} in flight; "
        f"{sum(reviewer.decided.values())} decisions; stack RSS at the end {rss:.0f} MB; "
        f"{load_average()}"
    )
    return errors + _problems(opts, escalated, results, reviewer, rows, journal)


def _problems(
    opts: SoakOptions,
    escalated: set[int],
    results: dict[int, tuple[str, str, bool]],
    reviewer: _Reviewer,
    rows: list[tuple[str, str, str]],
    journal: Counter[str],
) -> list[str]:
    problems = []
    if len(results) != opts.runs:
        problems.append(f"{opts.runs - len(results)} runs never finished")
    for i, (run_id, status, reviewed) in sorted(results.items()):
        if status != "completed" or reviewed != (i in escalated):
            problems.append(f"run {i} ({run_id}): {status}, reviewed={reviewed}")
    twice = {review: n for review, n in reviewer.decided.items() if n != 1}
    if twice:
        problems.append(f"reviews decided more than once: {twice}")
    problems += [f"decision refused: {why}" for why in reviewer.refused]
    escalated_runs = {results[i][0] for i in escalated if i in results}
    by_run = Counter(run_id for _, run_id, _ in rows)
    if set(by_run) != escalated_runs or any(n != 1 for n in by_run.values()):
        problems.append(f"review rows do not match the escalated runs: {len(rows)} rows")
    not_approved = [(review, status) for review, _, status in rows if status != "approved"]
    if not_approved:
        problems.append(f"reviews not approved: {not_approved[:10]}")
    if not journal["review.open"] == journal["review.close"] == len(escalated):
        problems.append(f"journal: {dict(journal)} for {len(escalated)} escalations")
    return problems


def main(argv: list[str]) -> None:
    """Parse `argv` (after `soak`), run, print the verdict; exit 1 if anything was lost."""
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__)
    parser.add_argument("--runs", type=int, default=SoakOptions.runs)
    parser.add_argument("--concurrency", type=int, default=SoakOptions.concurrency)
    parser.add_argument("--escalate-every", type=int, default=SoakOptions.escalate_every)
    args = parser.parse_args(argv)
    if min(args.runs, args.concurrency, args.escalate_every) < 1:
        parser.error("--runs, --concurrency and --escalate-every must be ≥ 1")
    problems = asyncio.run(soak(SoakOptions(args.runs, args.concurrency, args.escalate_every)))
    for problem in problems:
        print(f"LOST: {problem}")
    print("soak: nothing lost" if not problems else f"soak: {len(problems)} problems")
    sys.exit(1 if problems else 0)
