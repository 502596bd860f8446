"""Retrieval activities: search, collections, and ingestion batches, on a `RetrievalService`.

Every one is idempotent: a collection created twice with one configuration is one
collection, a batch indexed twice leaves the documents as the first run did (their content
hashes match), a document deleted twice is missing the second time, and staged documents
are read, never consumed, until `retrieval.clear_staged`. Long ones (a batch, a refresh)
are scheduled with a heartbeat timeout; the worker heartbeats for them
(`worker/heartbeats.py`), so a killed worker's batch is retried elsewhere within seconds.
"""

from collections.abc import Callable

import pydantic
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from keel.retrieval_tables import StagedDocumentRow
from keel.schemas.retrieval import (
    CLEAR_STAGED,
    COLLECTION_STATS,
    CREATE_COLLECTION,
    DELETE_DOCUMENTS,
    INGEST_BATCH,
    REFRESH_INDEX,
    RETRIEVAL_SEARCH,
    CollectionInfo,
    CollectionRef,
    CollectionSpec,
    DeleteDocuments,
    DeleteResult,
    DocumentIn,
    IngestBatch,
    IngestInput,
    SearchQuery,
    SearchResult,
    UpsertResult,
)
from tools.retrieval.errors import invalid_document
from tools.retrieval.service import RetrievalService

__all__ = ["RetrievalActivities"]


class RetrievalActivities:
    """The `retrieval.*` activities of one worker."""

    def __init__(
        self, service: RetrievalService, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        self._service = service
        self._sessions = sessions

    def all(self) -> list[Callable[..., object]]:
        """Every activity, to register on a worker."""
        return [
            self.search,
            self.create_collection,
            self.stats,
            self.ingest_batch,
            self.refresh,
            self.delete_documents,
            self.clear_staged,
        ]

    @activity.defn(name=RETRIEVAL_SEARCH)
    async def search(self, query: SearchQuery) -> SearchResult:
        """The best passages of a collection for a query."""
        return await self._service.search(query)

    @activity.defn(name=CREATE_COLLECTION)
    async def create_collection(self, spec: CollectionSpec) -> CollectionInfo:
        """Create a collection (or find it, configured the same)."""
        return await self._service.create_collection(spec)

    @activity.defn(name=COLLECTION_STATS)
    async def stats(self, ref: CollectionRef) -> CollectionInfo:
        """A collection's configuration and counts."""
        return await self._service.get_collection(ref.collection)

    @activity.defn(name=INGEST_BATCH)
    async def ingest_batch(self, batch: IngestBatch) -> UpsertResult:
        """Index the staged documents ``start <= seq < end``."""
        async with self._sessions() as session:
            rows = (
                await session.exec(
                    select(StagedDocumentRow)
                    .where(
                        StagedDocumentRow.upload_id == batch.upload_id,
                        col(StagedDocumentRow.seq) >= batch.start,
                        col(StagedDocumentRow.seq) < batch.end,
                    )
                    .order_by(col(StagedDocumentRow.seq))
                )
            ).all()
        if len(rows) != batch.end - batch.start:
            raise invalid_document(
                f"{batch.upload_id}[{batch.start}:{batch.end}]",
                f"{batch.end - batch.start - len(rows)} staged documents are missing",
            )
        documents = []
        for row in rows:
            try:
                documents.append(DocumentIn.model_validate(row.document))
            except pydantic.ValidationError as err:
                name = row.document.get("id", f"#{row.seq}")
                raise invalid_document(str(name), f"invalid ({err.error_count()} errors)") from None
        return await self._service.upsert(batch.collection, documents)

    @activity.defn(name=REFRESH_INDEX)
    async def refresh(self, ref: CollectionRef) -> CollectionInfo:
        """Build the collection's current index now."""
        return await self._service.refresh(ref.collection)

    @activity.defn(name=DELETE_DOCUMENTS)
    async def delete_documents(self, request: DeleteDocuments) -> DeleteResult:
        """Delete documents from a collection."""
        return await self._service.delete_documents(request.collection, request.ids)

    @activity.defn(name=CLEAR_STAGED)
    async def clear_staged(self, request: IngestInput) -> None:
        """Forget an ingestion's staged documents."""
        async with self._sessions() as session:
            await session.execute(
                delete(StagedDocumentRow).where(
                    col(StagedDocumentRow.upload_id) == request.upload_id
                )
            )
            await session.commit()
