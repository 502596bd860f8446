"""Measure Keel's retrieval on one test collection, through Keel's own ingestion and search.

The collection is created with Keel's default configuration (chunking, the built-in
embedding model, fusion), or without embeddings for a BM25-only run. Its documents are
staged and indexed by `IngestWorkflow` on Keel's own worker, against a Temporal dev server,
exactly as ``POST /v1/collections/{c}/documents`` does (`api.retrieval`). Then every dev
query is searched with each method through `RetrievalService.search`, the body of the
`retrieval.search` activity, in this process, so latencies are the engine's own. Passages
are chunks: a query's document ranking is its passages' documents, first occurrence first.
"""

import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.retrieval import stage_documents, start_ingestion
from bench.retrieval.collections import Collection
from bench.retrieval.metrics import mrr_at, ndcg_at, recall_at
from cli.devserver import DevServer
from keel.db import create_engine, init_db, session_factory
from keel.schemas.retrieval import (
    LOCAL_EMBEDDING,
    CollectionSpec,
    DocumentIn,
    SearchMethod,
    SearchQuery,
)
from keel.settings import Settings
from tools.retrieval.service import RetrievalService
from worker.main import keel_worker

__all__ = ["CUTOFF", "CollectionRun", "MethodRun", "measure"]

CUTOFF = 10
"""Metrics are taken at this rank."""

_PASSAGES = 40
"""Passages asked per query, so that `CUTOFF` distinct documents are among them."""

_STAGE = 1000
"""Documents staged per transaction."""

_ENCODE_SAMPLE = 200
"""New queries whose embedding time is measured."""


@dataclass
class MethodRun:
    """One search method over a collection's dev queries: per-query metrics and latencies."""

    method: SearchMethod
    ndcgs: list[float] = field(default_factory=list)
    recalls: list[float] = field(default_factory=list)
    mrrs: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def ndcg(self) -> float:
        return statistics.fmean(self.ndcgs)

    @property
    def recall(self) -> float:
        return statistics.fmean(self.recalls)

    @property
    def mrr(self) -> float:
        return statistics.fmean(self.mrrs)

    @property
    def p50_ms(self) -> float:
        return _p50_ms(self.latencies)

    @property
    def p95_ms(self) -> float:
        return _p95_ms(self.latencies)


def _p50_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def _p95_ms(seconds: list[float]) -> float:
    if len(seconds) < 2:
        return seconds[0] * 1000
    return statistics.quantiles(seconds, n=100, method="inclusive")[94] * 1000


@dataclass
class CollectionRun:
    """A collection ingested and searched."""

    name: str
    documents: int
    chunks: int
    queries: int
    ingest_s: float
    index_s: float
    index_bytes: int
    methods: list[MethodRun] = field(default_factory=list)
    encodings: list[float] = field(default_factory=list)
    """Seconds the embedding model took for a new query (on the first queries)."""

    @property
    def encode_p50_ms(self) -> float:
        return _p50_ms(self.encodings)

    @property
    def encode_p95_ms(self) -> float:
        return _p95_ms(self.encodings)


def _fresh(workdir: Path, server: DevServer) -> Settings:
    """Settings on `workdir`, its database and indexes removed (embeddings kept), and `server`."""
    for stale in workdir.glob("keel.db*"):
        stale.unlink()
    shutil.rmtree(workdir / "retrieval", ignore_errors=True)
    return Settings(
        data_dir=workdir,
        temporal_address=server.address,
        task_queue=f"bench-retrieval-{uuid4().hex}",
    )


def _sample(collection: Collection, limit: int | None) -> list[tuple[str, str]]:
    """The dev queries, or `limit` of them evenly spread over the file's order."""
    queries = list(collection.queries.items())
    if limit is None or limit >= len(queries):
        return queries
    step = len(queries) / limit
    return [queries[int(i * step)] for i in range(limit)]


async def measure(
    collection: Collection,
    workdir: Path,
    server: DevServer,
    *,
    dense: bool = True,
    max_queries: int | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> CollectionRun:
    """Ingest `collection` into a fresh Keel data directory and search its dev queries.

    Args:
        collection: The test collection.
        workdir: Keel's data directory for the run; its ``embeddings/`` cache is reused.
        server: The Temporal server Keel's worker runs the ingestion on.
        dense: Embed the collection (when the local model is installed) for dense and hybrid.
        max_queries: Search only this many dev queries (evenly spread); all when None.
        say: Progress messages.

    """
    settings = _fresh(workdir, server)
    engine = create_engine(settings.sql_url)
    await init_db(engine)
    sessions = session_factory(engine)
    service = await RetrievalService.open(settings, engine, sessions)
    try:
        name = f"bench-{collection.name}"
        await service.create_collection(
            CollectionSpec(name=name) if dense else CollectionSpec(name=name, embedding=None)
        )
        say(f"{collection.name}: ingesting {len(collection.docs)} documents (IngestWorkflow)")
        started = time.perf_counter()
        await _ingest(settings, sessions, name, collection)
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        await service.refresh(name)
        index_s = time.perf_counter() - started
        info = await service.get_collection(name)
        queries = _sample(collection, max_queries)
        run = CollectionRun(
            collection.name,
            info.documents,
            info.chunks,
            len(queries),
            ingest_s,
            index_s,
            info.index_bytes,
        )
        methods: list[SearchMethod] = ["bm25", "dense", "hybrid"] if info.dimensions else ["bm25"]
        say(f"{collection.name}: {len(queries)} queries, each with {', '.join(methods)}")
        await _search_all(service, name, collection, queries, run, methods, say)
        return run
    finally:
        await service.aclose()
        await engine.dispose()


async def _ingest(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    collection: Collection,
) -> None:
    """Stage the documents and run `IngestWorkflow` on Keel's worker until it ends."""
    docs = [DocumentIn(id=d.id, title=d.title, text=d.text) for d in collection.docs]
    ingestion = uuid4().hex
    async with sessions() as session:
        for start in range(0, len(docs), _STAGE):
            await stage_documents(session, name, ingestion, start, docs[start : start + _STAGE])
    async with keel_worker(settings, {}) as worker:
        handle = await start_ingestion(worker.client, settings, name, ingestion, len(docs))
        await handle.result()


async def _search_all(
    service: RetrievalService,
    name: str,
    collection: Collection,
    queries: list[tuple[str, str]],
    run: CollectionRun,
    methods: list[SearchMethod],
    say: Callable[[str], None],
) -> None:
    """Search every query with every method in turn, so all see the same machine load.

    With vectors, an untimed dense search first makes the service embed the query, so the
    timed dense and hybrid searches both find its vector known; the model's time for a new
    query is measured apart, on the first `_ENCODE_SAMPLE` queries.
    """
    by_method: dict[SearchMethod, MethodRun] = {m: MethodRun(m) for m in methods}
    encoder = service.embedder(LOCAL_EMBEDDING) if "dense" in methods else None
    for done, (query_id, text) in enumerate(queries, start=1):
        if encoder is not None:
            if done <= _ENCODE_SAMPLE:
                started = time.perf_counter()
                await encoder.embed([text])
                run.encodings.append(time.perf_counter() - started)
            await service.search(SearchQuery(collection=name, query=text, k=1, method="dense"))
        judged = collection.qrels[query_id]
        for method, measured in by_method.items():
            started = time.perf_counter()
            result = await service.search(
                SearchQuery(collection=name, query=text, k=_PASSAGES, method=method)
            )
            measured.latencies.append(time.perf_counter() - started)
            ranking = list(dict.fromkeys(p.document_id for p in result.passages))
            measured.ndcgs.append(ndcg_at(ranking, judged, CUTOFF))
            measured.recalls.append(recall_at(ranking, judged, CUTOFF))
            measured.mrrs.append(mrr_at(ranking, judged, CUTOFF))
        if done % 2000 == 0:
            say(f"{collection.name}: {done}/{len(queries)} queries")
    run.methods = list(by_method.values())
