"""`Embeddings`: the vectors of chunks and queries, from embedders built once per name.

Vectors go through the `EmbeddingCache` under the data directory, so a text is encoded
once per model; the last 1024 query vectors are also kept in memory.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from keel.retrieval_tables import ChunkRow
from keel.schemas.routing import Deployment
from tools.retrieval.embedders import Embedder, EmbeddingCache, build_embedder, content_hash
from tools.retrieval.index import IndexedChunk

__all__ = ["Embeddings", "embedded_text"]

_QUERY_VECTORS = 1024


def embedded_text(title: str, text: str) -> str:
    """The text a chunk's vector encodes (its content hash is the cache key)."""
    return f"{title}\n{text}" if title else text


class Embeddings:
    """A worker's embedders, and the vectors they give through the disk cache.

    Args:
        cache_dir: The `EmbeddingCache` folder.
        deployments: The routing settings' deployments, for OpenAI-compatible embeddings.

    """

    def __init__(self, cache_dir: Path, deployments: Mapping[str, Deployment]) -> None:
        self._cache = EmbeddingCache(cache_dir)
        self._deployments = dict(deployments)
        self._embedders: dict[str, Embedder] = {}
        self._query_vectors: dict[tuple[str, str], np.ndarray] = {}

    def embedder(self, name: str) -> Embedder:
        """The embedder called `name` (built once).

        Raises:
            ApplicationError: `UnknownEmbedding`.

        """
        if name not in self._embedders:
            self._embedders[name] = build_embedder(name, self._deployments)
        return self._embedders[name]

    async def chunk_vectors(
        self, embedding: str, chunks: Sequence[ChunkRow | IndexedChunk], hashes: list[str]
    ) -> np.ndarray:
        """The vectors of chunks' titles and texts (`hashes`: their content hashes)."""
        texts = [embedded_text(c.title, c.text) for c in chunks]
        return await self._cache.vectors(self.embedder(embedding), texts, hashes)

    async def query_vector(self, embedding: str, query: str) -> np.ndarray:
        """The vector of a search query."""
        key = (embedding, query)
        vector = self._query_vectors.get(key)
        if vector is None:
            vector = (
                await self._cache.vectors(self.embedder(embedding), [query], [content_hash(query)])
            )[0]
            if len(self._query_vectors) >= _QUERY_VECTORS:
                self._query_vectors.pop(next(iter(self._query_vectors)))
            self._query_vectors[key] = vector
        return vector

    async def aclose(self) -> None:
        """Close the embedding clients and models."""
        for embedder in self._embedders.values():
            await embedder.aclose()
        self._embedders.clear()
