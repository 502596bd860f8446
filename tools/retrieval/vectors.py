"""Where dense vectors live and how the nearest ones are found: two backends, one protocol.

- `DiskVectors` (embedded default): vectors are part of the index files
  (``vectors.npy``, rebuilt from the embedding cache with the index) and ranked by exact
  cosine in numpy.
- `PgVectors` (PostgreSQL): vectors are rows of ``retrieval_vectors`` with a pgvector
  ``vector`` column, written in the same transaction as their chunks, and ranked in SQL by
  exact cosine distance (``<=>``, no approximate index), so results match `DiskVectors`.
  Lexical search on PostgreSQL is the same bm25s index as on SQLite, built from the chunk
  rows by each worker: bm25s is true BM25, which PostgreSQL full-text ranking is not.

Vectors travel to PostgreSQL as pgvector's text form (``'[0.1,0.2]'::vector``), so no
driver codec needs registering on pooled connections.
"""

import asyncio
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from pgvector.sqlalchemy import Vector
from sqlalchemy import Column, MetaData, String, Table, text
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from tools.retrieval.fusion import Ranking, top
from tools.retrieval.index import CollectionIndex

__all__ = ["DiskVectors", "PgVectors", "VectorBackend", "vector_backend"]

_metadata = MetaData()
_vectors = Table(
    "retrieval_vectors",
    _metadata,
    Column("collection_uid", String(32), primary_key=True),
    Column("chunk_id", String(300), primary_key=True),
    Column("embedding", Vector(), nullable=False),
)


class VectorBackend(Protocol):
    """Stores chunk vectors and finds the nearest to a query."""

    on_disk: bool
    """Vectors belong in the index files (the index is built with them)."""

    async def init(self) -> None:
        """Create what the backend needs (idempotent)."""
        ...

    async def write(
        self, session: AsyncSession, uid: str, ids: Sequence[str], vectors: np.ndarray
    ) -> None:
        """Store chunk vectors, in the caller's transaction."""
        ...

    async def delete_documents(
        self, session: AsyncSession, uid: str, document_ids: Sequence[str]
    ) -> None:
        """Forget the vectors of these documents' chunks, in the caller's transaction."""
        ...

    async def nearest(
        self,
        uid: str,
        index: CollectionIndex,
        query: np.ndarray,
        depth: int,
        allowed: np.ndarray | None,
    ) -> Ranking:
        """The `depth` chunks of `index` closest to a unit `query` vector, by cosine."""
        ...


class DiskVectors:
    """Vectors in the index files, exact cosine in numpy."""

    on_disk = True

    async def init(self) -> None:
        """Nothing to create."""

    async def write(
        self, session: AsyncSession, uid: str, ids: Sequence[str], vectors: np.ndarray
    ) -> None:
        """Nothing to write: the index build reads the embedding cache."""

    async def delete_documents(
        self, session: AsyncSession, uid: str, document_ids: Sequence[str]
    ) -> None:
        """Nothing to delete: the next index build leaves them out."""

    async def nearest(
        self,
        uid: str,
        index: CollectionIndex,
        query: np.ndarray,
        depth: int,
        allowed: np.ndarray | None,
    ) -> Ranking:
        """Dot products with every vector (all unit length), best `depth`."""
        if index.vectors is None or not len(index.vectors):
            return Ranking(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        scores = index.vectors @ query.astype(np.float32)
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        return top(scores, depth)


class PgVectors:
    """Vectors in PostgreSQL with pgvector."""

    on_disk = False

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

    async def init(self) -> None:
        """Create the `vector` extension and the vectors table (workers may race to)."""
        for attempt in range(5):
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
                    await conn.run_sync(_metadata.create_all)
                return
            except (IntegrityError, ProgrammingError):
                # Another worker created it between our check and our CREATE: check again.
                if attempt == 4:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))

    async def write(
        self, session: AsyncSession, uid: str, ids: Sequence[str], vectors: np.ndarray
    ) -> None:
        """Insert (or replace) chunk vectors."""
        if not ids:
            return
        rows = [
            {"uid": uid, "id": chunk_id, "v": _literal(vector)}
            for chunk_id, vector in zip(ids, vectors, strict=True)
        ]
        await session.execute(
            text(
                "INSERT INTO retrieval_vectors (collection_uid, chunk_id, embedding) "
                "VALUES (:uid, :id, CAST(:v AS vector)) "
                "ON CONFLICT (collection_uid, chunk_id) "
                "DO UPDATE SET embedding = EXCLUDED.embedding"
            ),
            rows,
        )

    async def delete_documents(
        self, session: AsyncSession, uid: str, document_ids: Sequence[str]
    ) -> None:
        """Delete the vectors of these documents' chunks (before their chunk rows go)."""
        if document_ids:
            await session.execute(
                text(
                    "DELETE FROM retrieval_vectors WHERE collection_uid = :uid AND chunk_id IN "
                    "(SELECT id FROM retrieval_chunks "
                    "WHERE collection_uid = :uid AND document_id = ANY(:ids))"
                ),
                {"uid": uid, "ids": list(document_ids)},
            )

    async def nearest(
        self,
        uid: str,
        index: CollectionIndex,
        query: np.ndarray,
        depth: int,
        allowed: np.ndarray | None,
    ) -> Ranking:
        """Rank in SQL; chunks the index does not know (newer than it) are left out."""
        where = "collection_uid = :uid"
        params: dict[str, object] = {"uid": uid, "q": _literal(query), "depth": depth}
        if allowed is not None:
            where += " AND chunk_id = ANY(:ids)"
            params["ids"] = [c.id for c, ok in zip(index.chunks, allowed, strict=True) if ok]
        sql = (
            "SELECT chunk_id, 1 - (embedding <=> CAST(:q AS vector)) AS score "
            f"FROM retrieval_vectors WHERE {where} "
            "ORDER BY embedding <=> CAST(:q AS vector), chunk_id LIMIT :depth"
        )
        async with self._sessions() as session:
            rows = (await session.execute(text(sql), params)).all()
        found = [(index.positions[cid], score) for cid, score in rows if cid in index.positions]
        positions = np.array([p for p, _ in found], dtype=np.int64)
        scores = np.array([s for _, s in found], dtype=np.float32)
        return top(_scatter(positions, scores, len(index.chunks)), depth)


def _scatter(positions: np.ndarray, scores: np.ndarray, size: int) -> np.ndarray:
    full = np.full(size, -np.inf, dtype=np.float32)
    full[positions] = scores
    return full


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in np.asarray(vector, dtype=np.float32)) + "]"


def vector_backend(engine: AsyncEngine) -> VectorBackend:
    """`PgVectors` on a PostgreSQL engine, else `DiskVectors`."""
    return PgVectors(engine) if engine.dialect.name == "postgresql" else DiskVectors()
