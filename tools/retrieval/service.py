"""`RetrievalService`: collections, idempotent ingestion and search, on one SQL database.

The one object a worker builds for retrieval. It wires its parts together:
`CollectionStore` (`tools.retrieval.collection_store`), `Ingester` (`tools.retrieval.ingest`),
`Searcher` (`tools.retrieval.search`) and `Embeddings` (`tools.retrieval.embeddings`).
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.schemas.retrieval import (
    CollectionInfo,
    CollectionSpec,
    DeleteResult,
    DocumentIn,
    SearchConfig,
    SearchQuery,
    SearchResult,
    UpsertResult,
)
from keel.schemas.routing import Deployment
from keel.settings import Settings
from tools.retrieval.collection_store import CollectionStore
from tools.retrieval.embedders import Embedder
from tools.retrieval.embeddings import Embeddings
from tools.retrieval.index import IndexCache
from tools.retrieval.ingest import Ingester
from tools.retrieval.search import Searcher
from tools.retrieval.vectors import VectorBackend, vector_backend

__all__ = ["RetrievalService"]


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
        self._vectors = vectors
        self._embeddings = Embeddings(data_dir / "embeddings", deployments or {})
        self._collections = CollectionStore(sessions, self._embeddings, row_ttl_s=row_ttl_s)
        self._ingester = Ingester(sessions, self._collections, self._embeddings, vectors)
        self._searcher = Searcher(
            sessions,
            self._collections,
            self._embeddings,
            vectors,
            IndexCache(data_dir / "retrieval"),
        )

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
        await self._embeddings.aclose()

    def embedder(self, name: str) -> Embedder:
        """The embedder called `name`, built once (`Embeddings.embedder`)."""
        return self._embeddings.embedder(name)

    async def create_collection(self, spec: CollectionSpec) -> CollectionInfo:
        """Create a collection, or find it as configured (`CollectionStore.create`)."""
        return await self._collections.create(spec)

    async def set_search_config(self, name: str, config: SearchConfig) -> CollectionInfo:
        """Change how a collection is searched (`CollectionStore.set_search_config`)."""
        return await self._collections.set_search_config(name, config)

    async def get_collection(self, name: str) -> CollectionInfo:
        """A collection's configuration and counts (`CollectionStore.info`)."""
        return await self._collections.info(name)

    async def refresh(self, name: str) -> CollectionInfo:
        """Build or load the collection's current index now (`Searcher.refresh`)."""
        return await self._searcher.refresh(name)

    async def upsert(self, collection: str, documents: Sequence[DocumentIn]) -> UpsertResult:
        """Index new and changed documents (`Ingester.upsert`)."""
        return await self._ingester.upsert(collection, documents)

    async def delete_documents(self, collection: str, ids: Sequence[str]) -> DeleteResult:
        """Delete documents; their duplicates take their place (`Ingester.delete_documents`)."""
        return await self._ingester.delete_documents(collection, ids)

    async def search(self, query: SearchQuery) -> SearchResult:
        """The best passages of a collection for a query (`Searcher.search`)."""
        return await self._searcher.search(query)
