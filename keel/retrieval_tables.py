"""SQL tables of retrieval: collections, their documents and chunks, staged uploads.

The chunk table is the truth of an index: BM25 files and dense vectors are derived from
it and rebuilt when a collection's `version` moves. Rows of one collection carry its `uid`,
so a collection deleted and created again under the same name never meets stale files.
The reads here (`find_collection`, `collection_info`) serve the engine and the API alike.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, func
from sqlmodel import AutoString, Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.schemas.retrieval import CollectionInfo, CollectionSpec, DocumentFormat
from keel.tables import UtcDateTime

__all__ = [
    "ChunkRow",
    "CollectionRow",
    "DocumentRow",
    "StagedDocumentRow",
    "collection_info",
    "collection_spec",
    "find_collection",
]


def _utc(**kwargs: Any) -> Any:
    return Field(sa_column=Column(UtcDateTime(), **kwargs))


def _json(**kwargs: Any) -> Any:
    return Field(sa_column=Column(JSON, nullable=False), **kwargs)


class CollectionRow(SQLModel, table=True):
    """One collection: its configuration (`keel.schemas.retrieval.CollectionSpec`) and version."""

    # sqlmodel types `__tablename__` as a `declared_attr` only; SQLAlchemy takes a string too.
    __tablename__ = "retrieval_collections"  # pyright: ignore[reportAssignmentType]

    uid: str = Field(primary_key=True, max_length=32)
    name: str = Field(unique=True, max_length=63)
    spec: dict[str, Any] = _json()
    version: int = 0
    dimensions: int | None = None
    index_bytes: int = 0
    created_at: datetime = _utc(nullable=False)
    updated_at: datetime = _utc(nullable=False)


class DocumentRow(SQLModel, table=True):
    """One document as it was given, with the hash that tells re-ingestion it is unchanged."""

    __tablename__ = "retrieval_documents"  # pyright: ignore[reportAssignmentType]

    collection_uid: str = Field(primary_key=True, max_length=32)
    id: str = Field(primary_key=True, max_length=200)
    title: str
    text: str
    format: DocumentFormat = Field(sa_type=AutoString(20))
    doc_metadata: dict[str, Any] = _json()
    content_hash: str = Field(index=True, max_length=64)
    duplicate_of: str | None = Field(default=None, max_length=200)
    indexed_at: datetime = _utc(nullable=False)


class ChunkRow(SQLModel, table=True):
    """One chunk of a document: what BM25 and the vectors index, and what a passage shows."""

    __tablename__ = "retrieval_chunks"  # pyright: ignore[reportAssignmentType]

    collection_uid: str = Field(primary_key=True, max_length=32)
    id: str = Field(primary_key=True, max_length=300)
    document_id: str = Field(index=True, max_length=200)
    seq: int
    title: str
    text: str
    chunk_metadata: dict[str, Any] = _json()
    flags: list[str] = _json()
    content_hash: str = Field(max_length=64, description="Hash of the text that is embedded.")


class StagedDocumentRow(SQLModel, table=True):
    """A document waiting for `IngestWorkflow` (`keel.schemas.retrieval.DocumentIn` as JSON)."""

    __tablename__ = "retrieval_staged"  # pyright: ignore[reportAssignmentType]

    upload_id: str = Field(primary_key=True, max_length=200)
    seq: int = Field(primary_key=True)
    document: dict[str, Any] = _json()


def collection_spec(row: CollectionRow) -> CollectionSpec:
    """The configuration a collection row holds."""
    return CollectionSpec.model_validate({**row.spec, "name": row.name})


async def find_collection(session: AsyncSession, name: str) -> CollectionRow | None:
    """The collection called `name`, if there is one."""
    query = select(CollectionRow).where(CollectionRow.name == name)
    return (await session.exec(query)).first()


async def collection_info(session: AsyncSession, row: CollectionRow) -> CollectionInfo:
    """A collection's configuration and counts (documents, duplicates, chunks)."""
    documents, duplicates = (
        await session.exec(
            select(func.count(), func.count(col(DocumentRow.duplicate_of))).where(
                DocumentRow.collection_uid == row.uid
            )
        )
    ).one()
    chunks = (
        await session.exec(
            select(func.count()).select_from(ChunkRow).where(ChunkRow.collection_uid == row.uid)
        )
    ).one()
    return CollectionInfo(
        **collection_spec(row).model_dump(),
        version=row.version,
        documents=documents,
        duplicates=duplicates,
        chunks=chunks,
        dimensions=row.dimensions,
        index_bytes=row.index_bytes,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
