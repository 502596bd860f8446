"""`python -m bench.retrieval`: the retrieval table, also in `bench/results/retrieval.md`."""

import argparse
import asyncio
import sys
from pathlib import Path

from bench.retrieval import RetrievalOptions, run
from bench.retrieval.collections import COLLECTIONS

RESULTS = Path(__file__).parents[1] / "results" / "retrieval.md"


def _parse() -> RetrievalOptions:
    defaults = RetrievalOptions()
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval", description=__doc__)
    parser.add_argument(
        "--data", type=Path, default=defaults.data, help="folder of the test collections"
    )
    parser.add_argument(
        "--workdir", type=Path, default=defaults.workdir, help="Keel data directory for the runs"
    )
    parser.add_argument(
        "--collection",
        action="append",
        choices=COLLECTIONS,
        help="measure only this collection (repeatable)",
    )
    parser.add_argument(
        "--max-queries", type=int, default=None, help="dev queries a collection (default: all)"
    )
    parser.add_argument(
        "--bm25-only", action="store_true", help="no embeddings: BM25 alone, much faster"
    )
    args = parser.parse_args()
    if args.max_queries is not None and args.max_queries < 1:
        parser.error("--max-queries must be ≥ 1")
    return RetrievalOptions(
        data=args.data,
        workdir=args.workdir,
        collections=tuple(args.collection or COLLECTIONS),
        max_queries=args.max_queries,
        dense=not args.bm25_only,
    )


def main() -> None:
    report = asyncio.run(run(_parse())) + "\n"
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)
    print(f"(written to {RESULTS})", file=sys.stderr)


if __name__ == "__main__":
    main()
