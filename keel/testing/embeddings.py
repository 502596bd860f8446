"""OpenAI embeddings (`POST /v1/embeddings`): deterministic hashed bag-of-words vectors.

Each lowercase word adds +1 or -1 to one coordinate chosen by its hash, and the sum is
scaled to unit length; a text without words gets a vector hashed from the whole text. So
the same text always gets the same vector, and texts that share words are near each other
(cosine is word overlap, up to hash collisions), which lets retrieval tests see a real
ranking through the real SDK. Vectors are rounded to float32 first, so
`encoding_format="float"` and `"base64"` (the SDK's default, little-endian float32) decode
to identical numbers.
"""

import base64
import hashlib
import json
import math
import re
import struct
from typing import Any, cast

from keel.testing.dialect import count_words

__all__ = ["DEFAULT_DIMENSIONS", "EmbeddingInputError", "embed", "embeddings_response"]

DEFAULT_DIMENSIONS = 1536
_MODEL_DIMENSIONS = {"text-embedding-3-large": 3072}
_WORD = re.compile(r"[a-z0-9]+")


class EmbeddingInputError(ValueError):
    """A request the API would refuse with a 400.

    The fake provider's own refusal, not a failure of Keel (so not in `keel.errors`).
    """


def embed(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The unit vector of `text`, as float32 values."""
    raw = [0.0] * dimensions
    words = _WORD.findall(text.lower())
    for word in words:
        slot = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        raw[(slot >> 1) % dimensions] += 1.0 if slot & 1 else -1.0
    if not words:
        digest = hashlib.shake_256(text.encode()).digest(4 * dimensions)
        raw = [n / 2**31 - 1.0 for n in struct.unpack(f"<{dimensions}I", digest)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return list(struct.unpack(f"<{dimensions}f", _pack([x / norm for x in raw])))


def embeddings_response(body: dict[str, Any]) -> dict[str, Any]:
    """The `list` of embeddings the API returns for request `body`.

    Raises:
        EmbeddingInputError: `input`, `dimensions` or `encoding_format` is invalid.
    """
    texts = _texts(body.get("input"))
    named = body.get("model")
    model = named if isinstance(named, str) else ""
    dimensions = body.get("dimensions", _MODEL_DIMENSIONS.get(model, DEFAULT_DIMENSIONS))
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
        raise EmbeddingInputError(f"Invalid 'dimensions': {dimensions!r}.")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise EmbeddingInputError(f"Invalid 'encoding_format': {encoding!r}.")
    data: list[dict[str, Any]] = []
    for index, text in enumerate(texts):
        vector = embed(text, dimensions)
        value = base64.b64encode(_pack(vector)).decode() if encoding == "base64" else vector
        data.append({"object": "embedding", "index": index, "embedding": value})
    tokens = sum(count_words(text) for text in texts)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _pack(vector: list[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


def _texts(given: object) -> list[str]:
    """Each input as text: a string, a list of strings, or token arrays (hashed as JSON)."""
    if isinstance(given, str):
        return [given]
    if isinstance(given, list) and given:
        items = cast(list[object], given)
        if all(isinstance(item, int) for item in items):
            return [json.dumps(items)]
        if all(isinstance(item, str | list) for item in items):
            return [item if isinstance(item, str) else json.dumps(item) for item in items]
    raise EmbeddingInputError("'input' must be a string, a list of strings, or token arrays.")
