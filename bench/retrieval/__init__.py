"""Retrieval quality on real test collections, through Keel's own ingestion and search.

`python -m bench.retrieval` measures nDCG@10, Recall@10 and MRR@10 of BM25, dense and
hybrid (Keel's default) search on the BEIR-like collections in ``../shared/data/retrieval``,
with build time, query latency and index size, beside the collections' reference figures.
`python -m bench` runs it as its last section.
"""

from dataclasses import dataclass
from pathlib import Path

from bench._harness import dev_server, progress
from bench.retrieval.collections import COLLECTIONS, default_root, load
from bench.retrieval.measure import CollectionRun, measure
from bench.retrieval.reference import read_references
from bench.retrieval.report import render

__all__ = ["RetrievalOptions", "run"]


@dataclass(frozen=True)
class RetrievalOptions:
    """Where the collections are, where Keel's data goes, and how many queries to run."""

    data: Path = default_root()
    workdir: Path = Path(__file__).resolve().parents[2] / ".keel" / "bench-retrieval"
    """Keel's data directory per collection (git-ignored); keeps the embedding cache."""
    collections: tuple[str, ...] = COLLECTIONS
    max_queries: int | None = None
    """Search at most this many dev queries a collection (evenly spread); None: all."""
    dense: bool = True
    """Embed the collections (Keel's built-in model) for dense and hybrid search."""


async def run(options: RetrievalOptions) -> str:
    """Measure every collection in turn and render the table."""
    runs: list[CollectionRun] = []
    async with dev_server(tuned=True) as server:
        for name in options.collections:
            collection = load(options.data, name)
            runs.append(
                await measure(
                    collection,
                    options.workdir / name,
                    server,
                    dense=options.dense,
                    max_queries=options.max_queries,
                    say=progress,
                )
            )
    if options.max_queries is None:
        sample = "all dev queries"
    else:
        sample = f"at most {options.max_queries} dev queries a collection, evenly spread"
    title = f"Retrieval quality on {options.data} ({sample}):"
    return f"{title}\n\n{render(runs, read_references(options.data / 'README.md'))}"
