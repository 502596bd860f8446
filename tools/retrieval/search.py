"""`Searcher`: a collection's passages for a query, from the index of its current version.

Search reads the collection's version, takes the index of that version from the cache
(`tools.retrieval.index`), ranks with BM25 and, when the collection has vectors, dense
similarity, and fuses them as the collection's (or the query's) `SearchConfig` says.
"""

import asyncio

import numpy as np
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.retrieval_tables import ChunkRow, CollectionRow, collection_info, collection_spec
from keel.schemas.retrieval import CollectionInfo, Passage, SearchMethod, SearchQuery, SearchResult
from tools.retrieval.collection_store import CollectionStore
from tools.retrieval.embeddings import Embeddings
from tools.retrieval.errors import invalid_search
from tools.retrieval.fusion import Ranking, fuse, top
from tools.retrieval.index import CollectionIndex, IndexCache, IndexedChunk, Snapshot
from tools.retrieval.vectors import VectorBackend

__all__ = ["Searcher"]

_SNAPSHOT_TRIES = 5


class Searcher:
    """Searches collections, building each one's index when its version moves.

    Args:
        sessions: The SQL database.
        collections: The collections' rows.
        embeddings: Query vectors, and chunk vectors for an index on disk.
        vectors: Where vectors live.
        indexes: The loaded indexes.

    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        collections: CollectionStore,
        embeddings: Embeddings,
        vectors: VectorBackend,
        indexes: IndexCache,
    ) -> None:
        self._sessions = sessions
        self._collections = collections
        self._embeddings = embeddings
        self._vectors = vectors
        self._indexes = indexes

    async def search(self, query: SearchQuery) -> SearchResult:
        """The best passages of a collection for a query.

        Raises:
            ApplicationError: `UnknownCollection`; `InvalidSearch` for dense or hybrid
                search on a collection without vectors.

        """
        row = await self._collections.fresh_row(query.collection)
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
            vector = await self._embeddings.query_vector(spec.embedding, query.query)
            depth = query.k if method == "dense" else config.depth
            nearest = await self._vectors.nearest(row.uid, index, vector, depth, allowed)
            rankings.append(_weighted(nearest, config.dense_weight))
        best = rankings[0] if len(rankings) == 1 else fuse(rankings, config, query.k)
        return SearchResult(
            passages=_passages(row.name, index, best, query.k), method=method, version=index.version
        )

    async def refresh(self, name: str) -> CollectionInfo:
        """Build (or load) the collection's current index now, rather than at the next search.

        Also records the size of its files as the collection's `index_bytes`.
        """
        async with self._sessions() as session:
            row = await self._collections.row(session, name)
        index = await self._index(row)
        size = await asyncio.to_thread(self._indexes.size, row.uid, index.version)
        async with self._sessions() as session:
            if size != row.index_bytes:
                await session.execute(
                    update(CollectionRow)
                    .where(col(CollectionRow.uid) == row.uid)
                    .values(index_bytes=size)
                )
                await session.commit()
            return await collection_info(session, await self._collections.row(session, name))

    async def _index(self, row: CollectionRow) -> CollectionIndex:
        return await self._indexes.get(row.uid, row.version, lambda: self._snapshot(row))

    async def _snapshot(self, row: CollectionRow) -> Snapshot:
        """The collection's chunks at one version: read between two equal version reads."""
        version_query = select(CollectionRow.version).where(CollectionRow.uid == row.uid)
        tries = 0
        while True:
            tries += 1
            async with self._sessions() as session:
                before = (await session.exec(version_query)).one()
                # Plain column tuples: ORM objects for every chunk would cost seconds.
                # (sqlmodel's `select` is typed for at most four columns.)
                rows = (
                    await session.execute(
                        select(  # pyright: ignore[reportCallIssue]
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
            if before == after or tries == _SNAPSHOT_TRIES:  # the last try is taken as is
                break
            await asyncio.sleep(0.05)
        chunks = [IndexedChunk(*r[:6]) for r in rows]
        vectors = None
        spec = collection_spec(row)
        if self._vectors.on_disk and spec.embedding is not None and rows:
            vectors = await self._embeddings.chunk_vectors(
                spec.embedding, chunks, [r[6] for r in rows]
            )
        return Snapshot(after, chunks, vectors)


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
