"""`OpenAIEmbedder`: an ``openai`` or ``openai_compatible`` deployment as an `Embedder`.

Called through the official SDK (``max_retries=0``: Temporal owns retries; failures are
classified by `tools.models.errors.provider_error`, so 429/5xx/timeouts retry and other
4xx do not). `tools.retrieval.embedders.build_embedder` imports this module, and the SDK
with it, only for a collection that embeds through a deployment.
"""

from collections.abc import Sequence

import numpy as np

from tools.models.errors import malformed_response, provider_error
from tools.models.providers.openai import OpenAIProvider
from tools.retrieval.unit_rows import unit_rows

__all__ = ["OpenAIEmbedder"]

_REQUEST_BATCH = 128


class OpenAIEmbedder(OpenAIProvider):
    """Embeds through an OpenAI-compatible ``/v1/embeddings`` endpoint (one deployment)."""

    @property
    def model_id(self) -> str:
        """``<base url>|<model>``: the same model name on two servers may differ."""
        return f"{self.spec.base_url or 'openai'}|{self.spec.model}"

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts` in requests of at most 128 inputs.

        Raises:
            ApplicationError: Any failure, classified by `provider_error`.

        """
        rows: list[list[float]] = []
        try:
            if self._client is None:
                self._client = self._build_client()
            for start in range(0, len(texts), _REQUEST_BATCH):
                batch = list(texts[start : start + _REQUEST_BATCH])
                reply = await self._client.embeddings.create(
                    model=self.spec.model, input=batch, encoding_format="float"
                )
                data = sorted(reply.data, key=lambda item: item.index)
                if len(data) != len(batch):
                    raise malformed_response(self.name, "wrong number of embeddings")
                rows.extend(item.embedding for item in data)
        except Exception as exc:
            raise provider_error(exc, self.name) from None
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        if len({len(row) for row in rows}) != 1:
            raise malformed_response(self.name, "embeddings of different sizes")
        return unit_rows(np.array(rows, dtype=np.float32))
