"""`CollectionStore`: collections' rows in SQL — create, configure, read — and a cache of them.

A search reads a collection's row at most once per `row_ttl_s` (a database round trip
costs more than a BM25 query): a change made through this store is seen at once, one made
by another worker within that time.
"""

import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.retrieval_tables import CollectionRow, collection_info, collection_spec, find_collection
from keel.schemas.retrieval import CollectionInfo, CollectionSpec, SearchConfig
from tools.retrieval.embeddings import Embeddings
from tools.retrieval.errors import collection_exists, unknown_collection

__all__ = ["CollectionStore", "utc_now"]


def utc_now() -> datetime:
    """The time stamp rows are written with."""
    return datetime.now(UTC)


class CollectionStore:
    """The collections of one SQL database.

    Args:
        sessions: The SQL database.
        embeddings: Checks the embedding a new collection names.
        row_ttl_s: How long `fresh_row` trusts the row it read last.

    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        embeddings: Embeddings,
        *,
        row_ttl_s: float,
    ) -> None:
        self._sessions = sessions
        self._embeddings = embeddings
        self._row_ttl_s = row_ttl_s
        self._rows: dict[str, tuple[float, CollectionRow]] = {}

    async def row(self, session: AsyncSession, name: str) -> CollectionRow:
        """The collection's row, read now.

        Raises:
            ApplicationError: `UnknownCollection`.

        """
        row = await find_collection(session, name)
        if row is None:
            raise unknown_collection(name)
        self._rows[name] = (time.monotonic(), row)
        return row

    async def fresh_row(self, name: str) -> CollectionRow:
        """The collection's row, read at most `row_ttl_s` ago.

        Raises:
            ApplicationError: `UnknownCollection`.

        """
        cached = self._rows.get(name)
        if cached is not None and time.monotonic() - cached[0] < self._row_ttl_s:
            return cached[1]
        async with self._sessions() as session:
            return await self.row(session, name)

    def forget(self, name: str) -> None:
        """Drop the cached row of a collection that has just changed."""
        self._rows.pop(name, None)

    async def create(self, spec: CollectionSpec) -> CollectionInfo:
        """Create a collection; creating it again with the same configuration is a no-op.

        Raises:
            ApplicationError: `CollectionExists` (other configuration), `UnknownEmbedding`.

        """
        if spec.embedding:
            self._embeddings.embedder(spec.embedding)
        stored = spec.model_dump(mode="json", exclude={"name"})
        async with self._sessions() as session:
            row = await find_collection(session, spec.name)
            if row is None:
                now = utc_now()
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
                row = await self.row(session, spec.name)
            if collection_spec(row) != spec:
                raise collection_exists(spec.name)
            return await collection_info(session, row)

    async def set_search_config(self, name: str, config: SearchConfig) -> CollectionInfo:
        """Change how a collection is searched (takes effect at once; the index stays).

        Raises:
            ApplicationError: `UnknownCollection`.

        """
        async with self._sessions() as session:
            row = await self.row(session, name)
            spec = collection_spec(row).model_copy(update={"search": config})
            await session.execute(
                update(CollectionRow)
                .where(col(CollectionRow.uid) == row.uid)
                .values(spec=spec.model_dump(mode="json", exclude={"name"}), updated_at=utc_now())
            )
            await session.commit()
            self.forget(name)
            return await collection_info(session, await self.row(session, name))

    async def info(self, name: str) -> CollectionInfo:
        """A collection's configuration and counts.

        Raises:
            ApplicationError: `UnknownCollection`.

        """
        async with self._sessions() as session:
            return await collection_info(session, await self.row(session, name))
