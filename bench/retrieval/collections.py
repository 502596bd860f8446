"""The BEIR-like test collections: corpus, dev queries and relevance judgements."""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["COLLECTIONS", "Collection", "Doc", "default_root", "load"]

COLLECTIONS = ("faq-qa", "debian-pkgdesc")
"""The collections the bench measures, smallest first."""


@dataclass(frozen=True)
class Doc:
    """One corpus document."""

    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Collection:
    """A corpus with its dev queries and their judged relevant documents."""

    name: str
    docs: list[Doc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def default_root() -> Path:
    """``../shared/data/retrieval`` next to the repository."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "retrieval"


def load(root: Path, name: str) -> Collection:
    """Read ``<root>/<name>/{corpus.jsonl,queries.dev.jsonl,qrels.dev.tsv}``.

    Only queries with at least one judgement are kept.
    """
    folder = root / name
    with (folder / "corpus.jsonl").open(encoding="utf-8") as lines:
        docs = [Doc(d["_id"], d.get("title", ""), d["text"]) for d in map(json.loads, lines)]
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels.dev.tsv").open(encoding="utf-8", newline="") as rows:
        reader = csv.reader(rows, delimiter="\t")
        next(reader)
        for query_id, doc_id, score in reader:
            qrels.setdefault(query_id, {})[doc_id] = int(score)
    with (folder / "queries.dev.jsonl").open(encoding="utf-8") as lines:
        queries = {q["_id"]: q["text"] for q in map(json.loads, lines) if q["_id"] in qrels}
    return Collection(name, docs, queries, qrels)
