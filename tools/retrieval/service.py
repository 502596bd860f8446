"""`RetrievalService`: collections, idempotent ingestion and search, on one SQL database.

Writing a batch has two phases. The plan reads what is stored, decides per document
(unchanged: same id and content; duplicate: same content as another document, not indexed
twice; else indexed), chunks and flags the text and gets vectors (from the embedding cache
when it has them). The commit then replaces the documents' rows in one transaction that
starts with its writes, and moves the collection's `version` on. A document is never half
indexed, and running the same batch again changes nothing.

A duplicate points at the document it copies. When that document changes or goes, its
first duplicate is indexed in its place and the others point at it.

Search reads the collection's version, takes the index of that version from the cache
(`tools.retrieval.index`), ranks with BM25 and, when the collection has vectors, dense
similarity, and fuses them as the collection's (or the query's) `SearchConfig` says. The
collection's row is read at most once per `row_ttl_s` (a database round trip costs more
than a BM25 query): a change made through this service is seen at once, one made by
another worker within that time.
"""

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import numpy as np
from sqlalchemy import delete, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.retrieval_tables import (
    ChunkRow,
    CollectionRow,
    DocumentRow,
    collection_info,
    collection_spec,
    find_collection,
)
from keel.schemas.retrieval import (
    CollectionInfo,
    CollectionSpec,
    DeleteResult,
    DocumentIn,
    Passage,
    SearchConfig,
    SearchMethod,
    SearchQuery,
    SearchResult,
    UpsertResult,
)
from keel.schemas.routing import Deployment
from keel.settings import Settings
from tools.retrieval.chunking import chunk_document
from tools.retrieval.embedders import Embedder, EmbeddingCache, build_embedder, content_hash
from tools.retrieval.errors import (
    collection_exists,
    invalid_document,
    invalid_search,
    unknown_collection,
)
from tools.retrieval.fusion import Ranking, fuse, top
from tools.retrieval.index import CollectionIndex, IndexCache, IndexedChunk, Snapshot
from tools.retrieval.injection import injection_flags
from tools.retrieval.vectors import VectorBackend, vector_backend

__all__ = ["RetrievalService"]

_SNAPSHOT_TRIES = 5


@dataclass
class _Planned:
    """A document row to (re)write, with its chunks and their vectors."""

    document: DocumentRow
    chunks: list[ChunkRow] = field(default_factory=list)
    vectors: np.ndarray | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _document_hash(document: DocumentIn) -> str:
    return content_hash(f"{document.format}\n{document.title}\n{document.text}")


def _embedded_text(title: str, text: str) -> str:
    return f"{title}\n{text}" if title else text


class RetrievalService:
    """Collections of documents, indexed for BM25 and (optionally) dense search.

    Args:
        sessions: The SQL database.
        vectors: Where vectors live (`vector_backend(engine)`).
        data_dir: Index files go to ``retrieval/``, the embedding cache to ``embeddings/``.
        deployments: The routing settings' deployments, for OpenAI-compatible embeddings.
        row_ttl_s: How long a search trusts the collection row it read last.

    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        vectors: VectorBackend,
        data_dir: Path,
        deployments: dict[str, Deployment] | None = None,
        *,
        row_ttl_s: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._row_ttl_s = row_ttl_s
        self._rows: dict[str, tuple[float, CollectionRow]] = {}
        self._vectors = vectors
        self._indexes = IndexCache(data_dir / "retrieval")
        self._cache = EmbeddingCache(data_dir / "embeddings")
        self._deployments = dict(deployments or {})
        self._embedders: dict[str, Embedder] = {}
        self._query_vectors: dict[tuple[str, str], np.ndarray] = {}

    @classmethod
    async def open(
        cls, settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
    ) -> Self:
        """The service of a worker configured by `settings`, its backend initialised."""
        service = cls(sessions, vector_backend(engine), settings.data_dir, settings.deployments)
        await service._vectors.init()
        return service

    async def aclose(self) -> None:
        """Close the embedding clients and models."""
        for embedder in self._embedders.values():
            await embedder.aclose()
        self._embedders.clear()

    def embedder(self, name: str) -> Embedder:
        """The embedder called `name` (built once).

        Raises:
            ApplicationError: `UnknownEmbedding`.

        """
        if name not in self._embedders:
            self._embedders[name] = build_embedder(name, self._deployments)
        return self._embedders[name]

    # Collections

    async def create_collection(self, spec: CollectionSpec) -> CollectionInfo:
        """Create a collection; creating it again with the same configuration is a no-op.

        Raises:
            ApplicationError: `CollectionExists` (other configuration), `UnknownEmbedding`.

        """
        if spec.embedding:
            self.embedder(spec.embedding)
        stored = spec.model_dump(mode="json", exclude={"name"})
        async with self._sessions() as session:
            row = await find_collection(session, spec.name)
            if row is None:
                now = _now()
                session.add(
                    CollectionRow(
                        uid=uuid.uuid4().hex,
                        name=spec.name,
                        spec=stored,
                        created_at=now,
                        updated_at=now,
                    )
                )
                try:
                    await session.commit()
                except IntegrityError:  # created by someone else meanwhile
                    await session.rollback()
                row = await self._row(session, spec.name)
            if collection_spec(row) != spec:
                raise collection_exists(spec.name)
            return await collection_info(session, row)

    async def set_search_config(self, name: str, config: SearchConfig) -> CollectionInfo:
        """Change how a collection is searched (takes effect at once; the index stays).

        Raises:
            ApplicationError: `UnknownCollection`.

        """
        async with self._sessions() as session:
            row = await self._row(session, name)
            spec = collection_spec(row).model_copy(update={"search": config})
            await session.execute(
                update(CollectionRow)
                .where(CollectionRow.uid == row.uid)
                .values(spec=spec.model_dump(mode="json", exclude={"name"}), updated_at=_now())
            )
            await session.commit()
            self._rows.pop(name, None)
            return await collection_info(session, await self._row(session, name))

    async def get_collection(self, name: str) -> CollectionInfo:
        """A collection's configuration and counts.

        Raises:
            ApplicationError: `UnknownCollection`.

        """
        async with self._sessions() as session:
            return await collection_info(session, await self._row(session, name))

    async def refresh(self, name: str) -> CollectionInfo:
        """Build (or load) the collection's current index now, rather than at the next search.

        Also records the size of its files as the collection's `index_bytes`.
        """
        async with self._sessions() as session:
            row = await self._row(session, name)
        index = await self._index(row)
        size = await asyncio.to_thread(self._indexes.size, row.uid, index.version)
        async with self._sessions() as session:
            if size != row.index_bytes:
                await session.execute(
                    update(CollectionRow)
                    .where(CollectionRow.uid == row.uid)
                    .values(index_bytes=size)
                )
                await session.commit()
            return await collection_info(session, await self._row(session, name))

    # Documents

    async def upsert(self, collection: str, documents: Sequence[DocumentIn]) -> UpsertResult:
        """Index documents: new and changed ones replace their chunks, others are skipped.

        Raises:
            ApplicationError: `UnknownCollection`; `InvalidDocument` (nothing is written).

        """
        _validate(documents)
        async with self._sessions() as session:
            row = await self._row(session, collection)
            spec = collection_spec(row)
            ids = [d.id for d in documents]
            hashes = {d.id: _document_hash(d) for d in documents}
            stored = (
                await session.exec(
                    select(DocumentRow).where(
                        DocumentRow.collection_uid == row.uid,
                        or_(
                            DocumentRow.id.in_(ids),  # type: ignore[attr-defined]
                            DocumentRow.content_hash.in_(set(hashes.values())),  # type: ignore[attr-defined]
                        ),
                    )
                )
            ).all()
        by_id = {d.id: d for d in stored}
        originals = {
            d.content_hash: d.id
            for d in sorted(stored, key=lambda d: d.id)
            if d.duplicate_of is None and d.id not in hashes
        }
        result = UpsertResult()
        planned: list[_Planned] = []
        now = _now()
        for document in documents:
            old = by_id.get(document.id)
            digest = hashes[document.id]
            if (
                old is not None
                and old.content_hash == digest
                and old.doc_metadata == document.metadata
            ):
                result.unchanged.append(document.id)
                continue
            original = originals.get(digest)
            new_row = DocumentRow(
                collection_uid=row.uid,
                id=document.id,
                title=document.title,
                text=document.text,
                format=document.format,
                doc_metadata=document.metadata,
                content_hash=digest,
                duplicate_of=original,
                indexed_at=now,
            )
            if original is not None:
                result.duplicates[document.id] = original
                planned.append(_Planned(new_row))
                continue
            originals[digest] = document.id
            planned.append(self._chunked(new_row, spec, document))
            result.indexed.append(document.id)
        changed = [p.document.id for p in planned]
        if not changed:
            result.version = row.version
            return result
        lost = [i for i in changed if i in by_id and by_id[i].duplicate_of is None]
        promoted, repoint = await self._orphans(row, spec, lost, originals, exclude=set(changed))
        planned += promoted
        await self._embed(row, spec, planned)
        result.chunks = sum(len(p.chunks) for p in planned)
        result.version = await self._commit(row, [], planned, repoint)
        return result

    async def delete_documents(self, collection: str, ids: Sequence[str]) -> DeleteResult:
        """Delete documents and their chunks; their duplicates take their place.

        Raises:
            ApplicationError: `UnknownCollection`.

        """
        wanted = list(dict.fromkeys(ids))
        async with self._sessions() as session:
            row = await self._row(session, collection)
            spec = collection_spec(row)
            stored = (
                await session.exec(
                    select(DocumentRow).where(
                        DocumentRow.collection_uid == row.uid,
                        DocumentRow.id.in_(wanted),  # type: ignore[attr-defined]
                    )
                )
            ).all()
        found = {d.id: d for d in stored}
        result = DeleteResult(
            deleted=[i for i in wanted if i in found], missing=[i for i in wanted if i not in found]
        )
        if not result.deleted:
            result.version = row.version
            return result
        lost = [d.id for d in stored if d.duplicate_of is None]
        promoted, repoint = await self._orphans(row, spec, lost, {}, exclude=set(wanted))
        await self._embed(row, spec, promoted)
        result.version = await self._commit(row, result.deleted, promoted, repoint)
        return result

    # Search

    async def search(self, query: SearchQuery) -> SearchResult:
        """The best passages of a collection for a query.

        Raises:
            ApplicationError: `UnknownCollection`; `InvalidSearch` for dense or hybrid
                search on a collection without vectors.

        """
        row = await self._fresh_row(query.collection)
        spec = collection_spec(row)
        config = query.config or spec.search
        index = await self._index(row)
        has_vectors = spec.embedding is not None and row.dimensions is not None
        method: SearchMethod = query.method or ("hybrid" if has_vectors else "bm25")
        if method != "bm25" and not has_vectors:
            raise invalid_search(
                f"collection {row.name!r} has no vectors: search it with method 'bm25'"
            )
        if index.lexical is None:
            return SearchResult(passages=[], method=method, version=index.version)
        allowed = index.allowed(query.filters)
        rankings: list[Ranking] = []
        if method != "dense":
            scores = index.lexical.scores(
                query.query,
                text_weight=config.text_weight,
                title_weight=config.title_weight,
                stopwords=config.query_stopwords,
            )
            if allowed is not None:
                scores = np.where(allowed, scores, -np.inf)
            depth = query.k if method == "bm25" else config.depth
            rankings.append(_weighted(top(scores, depth, positive=True), config.lexical_weight))
        if method != "bm25":
            assert spec.embedding is not None
            vector = await self._query_vector(spec.embedding, query.query)
            depth = query.k if method == "dense" else config.depth
            nearest = await self._vectors.nearest(row.uid, index, vector, depth, allowed)
            rankings.append(_weighted(nearest, config.dense_weight))
        best = rankings[0] if len(rankings) == 1 else fuse(rankings, config, query.k)
        return SearchResult(
            passages=_passages(row.name, index, best, query.k), method=method, version=index.version
        )

    # Internals

    async def _row(self, session: AsyncSession, name: str) -> CollectionRow:
        row = await find_collection(session, name)
        if row is None:
            raise unknown_collection(name)
        self._rows[name] = (time.monotonic(), row)
        return row

    async def _fresh_row(self, name: str) -> CollectionRow:
        cached = self._rows.get(name)
        if cached is not None and time.monotonic() - cached[0] < self._row_ttl_s:
            return cached[1]
        async with self._sessions() as session:
            return await self._row(session, name)

    @staticmethod
    def _chunked(document: DocumentRow, spec: CollectionSpec, given: DocumentIn) -> _Planned:
        chunks = chunk_document(given, spec.chunking)
        if not chunks:
            raise invalid_document(given.id, "no text to index")
        return _Planned(
            document,
            [
                ChunkRow(
                    collection_uid=document.collection_uid,
                    id=chunk.id,
                    document_id=document.id,
                    seq=chunk.seq,
                    title=chunk.title,
                    text=chunk.text,
                    chunk_metadata=document.doc_metadata,
                    flags=injection_flags(f"{chunk.title}\n{chunk.text}"),
                    content_hash=content_hash(_embedded_text(chunk.title, chunk.text)),
                )
                for chunk in chunks
            ],
        )

    async def _orphans(
        self,
        row: CollectionRow,
        spec: CollectionSpec,
        lost: list[str],
        originals: dict[str, str],
        *,
        exclude: set[str],
    ) -> tuple[list[_Planned], dict[str, str]]:
        """Duplicates of documents that stop being originals: promote one, repoint the rest."""
        if not lost:
            return [], {}
        async with self._sessions() as session:
            orphans = (
                await session.exec(
                    select(DocumentRow)
                    .where(
                        DocumentRow.collection_uid == row.uid,
                        DocumentRow.duplicate_of.in_(lost),  # type: ignore[union-attr]
                    )
                    .order_by(DocumentRow.id)  # type: ignore[arg-type]
                )
            ).all()
        promoted: list[_Planned] = []
        repoint: dict[str, str] = {}
        for orphan in orphans:
            if orphan.id in exclude:
                continue
            heir = originals.get(orphan.content_hash)
            if heir is not None:
                repoint[orphan.id] = heir
                continue
            originals[orphan.content_hash] = orphan.id
            given = DocumentIn(
                id=orphan.id,
                title=orphan.title,
                text=orphan.text,
                format=orphan.format,  # type: ignore[arg-type]
                metadata=orphan.doc_metadata,
            )
            fresh = DocumentRow.model_validate(
                {**orphan.model_dump(), "duplicate_of": None, "indexed_at": _now()}
            )
            promoted.append(self._chunked(fresh, spec, given))
        return promoted, repoint

    async def _embed(
        self, row: CollectionRow, spec: CollectionSpec, planned: list[_Planned]
    ) -> None:
        """Vectors for the planned chunks (only a PostgreSQL backend stores them now)."""
        if spec.embedding is None:
            return
        chunks = [c for p in planned for c in p.chunks]
        if not chunks:
            return
        matrix = await self._chunk_vectors(spec.embedding, chunks, [c.content_hash for c in chunks])
        if row.dimensions is not None and matrix.shape[1] != row.dimensions:
            raise invalid_search(
                f"embedding {spec.embedding!r} now returns {matrix.shape[1]} dimensions; "
                f"collection {row.name!r} has {row.dimensions}"
            )
        start = 0
        for item in planned:
            item.vectors = matrix[start : start + len(item.chunks)]
            start += len(item.chunks)

    async def _commit(
        self,
        row: CollectionRow,
        removed: list[str],
        planned: list[_Planned],
        repoint: dict[str, str],
    ) -> int:
        """Write one change set in one transaction; return the collection's new version."""
        gone = removed + [p.document.id for p in planned]
        dimensions = next(
            (p.vectors.shape[1] for p in planned if p.vectors is not None and len(p.vectors)),
            None,
        )
        async with self._sessions() as session:
            await self._vectors.delete_documents(session, row.uid, gone)
            for start in range(0, len(gone), 500):
                part = gone[start : start + 500]
                await session.execute(
                    delete(ChunkRow).where(
                        ChunkRow.collection_uid == row.uid,
                        ChunkRow.document_id.in_(part),  # type: ignore[attr-defined]
                    )
                )
                await session.execute(
                    delete(DocumentRow).where(
                        DocumentRow.collection_uid == row.uid,
                        DocumentRow.id.in_(part),  # type: ignore[attr-defined]
                    )
                )
            for item in planned:
                session.add(item.document)
                session.add_all(item.chunks)
            await session.flush()
            for item in planned:
                if item.vectors is not None and len(item.chunks):
                    await self._vectors.write(
                        session, row.uid, [c.id for c in item.chunks], item.vectors
                    )
            for document_id, heir in repoint.items():
                await session.execute(
                    update(DocumentRow)
                    .where(DocumentRow.collection_uid == row.uid, DocumentRow.id == document_id)
                    .values(duplicate_of=heir)
                )
            changes: dict[str, object] = {
                "version": CollectionRow.version + 1,
                "updated_at": _now(),
            }
            if dimensions is not None:
                changes["dimensions"] = func.coalesce(CollectionRow.dimensions, dimensions)
            await session.execute(
                update(CollectionRow).where(CollectionRow.uid == row.uid).values(**changes)
            )
            version = (
                await session.exec(
                    select(CollectionRow.version).where(CollectionRow.uid == row.uid)
                )
            ).one()
            await session.commit()
        self._rows.pop(row.name, None)
        return version

    async def _index(self, row: CollectionRow) -> CollectionIndex:
        return await self._indexes.get(row.uid, row.version, lambda: self._snapshot(row))

    async def _snapshot(self, row: CollectionRow) -> Snapshot:
        """The collection's chunks at one version: read between two equal version reads."""
        version_query = select(CollectionRow.version).where(CollectionRow.uid == row.uid)
        for _ in range(_SNAPSHOT_TRIES):
            async with self._sessions() as session:
                before = (await session.exec(version_query)).one()
                # Plain column tuples: ORM objects for every chunk would cost seconds.
                rows = (
                    await session.execute(
                        select(  # type: ignore[call-overload]
                            ChunkRow.id,
                            ChunkRow.document_id,
                            ChunkRow.title,
                            ChunkRow.text,
                            ChunkRow.chunk_metadata,
                            ChunkRow.flags,
                            ChunkRow.content_hash,
                        )
                        .where(ChunkRow.collection_uid == row.uid)
                        .order_by(ChunkRow.document_id, ChunkRow.seq)
                    )
                ).all()
                after = (await session.exec(version_query)).one()
            if before == after:
                break
            await asyncio.sleep(0.05)
        chunks = [IndexedChunk(*r[:6]) for r in rows]
        vectors = None
        spec = collection_spec(row)
        if self._vectors.on_disk and spec.embedding is not None and rows:
            vectors = await self._chunk_vectors(spec.embedding, chunks, [r[6] for r in rows])
        return Snapshot(after, chunks, vectors)

    async def _chunk_vectors(
        self, embedding: str, chunks: Sequence[ChunkRow | IndexedChunk], hashes: list[str]
    ) -> np.ndarray:
        """The vectors of chunks' titles and texts (`hashes`: their content hashes)."""
        texts = [_embedded_text(c.title, c.text) for c in chunks]
        return await self._cache.vectors(self.embedder(embedding), texts, hashes)

    async def _query_vector(self, embedding: str, query: str) -> np.ndarray:
        key = (embedding, query)
        vector = self._query_vectors.get(key)
        if vector is None:
            vector = (
                await self._cache.vectors(self.embedder(embedding), [query], [content_hash(query)])
            )[0]
            if len(self._query_vectors) >= 1024:
                self._query_vectors.pop(next(iter(self._query_vectors)))
            self._query_vectors[key] = vector
        return vector


def _validate(documents: Sequence[DocumentIn]) -> None:
    seen: set[str] = set()
    for document in documents:
        if document.id in seen:
            raise invalid_document(document.id, "given twice in one batch")
        seen.add(document.id)


def _weighted(ranking: Ranking, weight: float) -> Ranking:
    return Ranking(ranking.positions, ranking.scores, weight)


def _passages(collection: str, index: CollectionIndex, ranking: Ranking, k: int) -> list[Passage]:
    passages = []
    for position, score in zip(
        ranking.positions[:k].tolist(), ranking.scores[:k].tolist(), strict=True
    ):
        chunk = index.chunks[position]
        passages.append(
            Passage(
                id=chunk.id,
                document_id=chunk.document_id,
                title=chunk.title,
                text=chunk.text,
                score=float(score),
                collection=collection,
                metadata=chunk.metadata,
                flags=chunk.flags,
            )
        )
    return passages
