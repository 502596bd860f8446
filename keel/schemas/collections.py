"""REST models of `/v1/collections`: collections, document uploads and ingestions."""

from typing import Literal

from pydantic import BaseModel, Field, computed_field

from keel.schemas.retrieval import CollectionInfo, DocumentIn, IngestProgress

__all__ = [
    "TERMINAL_INGESTION_STATUSES",
    "CollectionList",
    "CollectionView",
    "DocumentsUpload",
    "IngestionStatus",
    "IngestionView",
]

IngestionStatus = Literal["staged", "running", "completed", "failed", "cancelled"]
"""`staged`: documents are waiting for the request that starts indexing them."""

TERMINAL_INGESTION_STATUSES: frozenset[IngestionStatus] = frozenset(
    {"completed", "failed", "cancelled"}
)
"""The statuses an ingestion ends in."""


class CollectionView(CollectionInfo):
    """A collection: its configuration and what it holds."""

    @computed_field
    @property
    def has_vectors(self) -> bool:
        """Whether its chunks have dense vectors (dense and hybrid search work)."""
        return self.dimensions is not None


class CollectionList(BaseModel):
    """Every collection, by name."""

    collections: list[CollectionView]


class DocumentsUpload(BaseModel):
    """`POST /v1/collections/{c}/documents` as JSON: the documents to add or replace."""

    documents: list[DocumentIn] = Field(min_length=1, max_length=10_000)


class IngestionView(IngestProgress):
    """An ingestion: documents staged for a collection and indexed in batches by a workflow.

    `done` counts the documents processed so far: `indexed` (new or changed), `unchanged`
    (same id, same content: nothing to do) and `duplicates` (another document of the
    collection has the same content; not indexed twice); `chunks` counts chunks written.
    """

    id: str
    status: IngestionStatus
    version: int | None = Field(default=None, description="The collection's version after it.")
    error: str | None = None
    url: str = Field(description="Where to follow it: `GET` this address.")
    ui_url: str = Field(description="The ingestion workflow in the Temporal UI.")

    @classmethod
    def of(cls, progress: IngestProgress, **fields: object) -> "IngestionView":
        """A view from the workflow's progress (or result) and the fields it lacks."""
        return cls.model_validate(progress.model_dump() | fields)
