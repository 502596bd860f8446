"""What both SDK adapters share: a lazily built client, the key, classified errors, closing."""

import os
import time
from typing import Any, Generic, Protocol, TypeVar

from keel.schemas.model import ModelRequest, ModelResponse
from keel.schemas.routing import Deployment, Price
from tools.models.errors import missing_api_key, provider_error

__all__ = ["SDKProvider"]


class _Client(Protocol):
    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Client)


class SDKProvider(Generic[ClientT]):
    """Calls one deployment through a provider SDK; subclasses speak the SDK."""

    def __init__(self, name: str, spec: Deployment) -> None:
        self.name = name
        self.spec = spec
        self._client: ClientT | None = None

    async def complete(self, request: ModelRequest, price: Price) -> ModelResponse:
        """Answer `request` on this deployment.

        Args:
            request: The normalised request.
            price: What the deployment's tokens cost.

        Returns:
            The normalised response, priced.

        Raises:
            ApplicationError: Any failure, classified by `provider_error`.

        """
        started = time.perf_counter()
        try:
            if self._client is None:  # no work at construction: the key is read when used
                self._client = self._build_client()
            reply = await self._send(self._client, request)
            return self._response(request, reply, price, started)
        except Exception as exc:
            raise provider_error(exc, self.name) from None

    async def aclose(self) -> None:
        """Close the HTTP client, if one was built."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _key(self) -> str:
        env = self.spec.key_env
        assert env is not None, "only deployments that need a key read one"
        key = os.environ.get(env, "").strip()
        if not key:
            raise missing_api_key(self.name, env)
        return key

    def _build_client(self) -> ClientT:
        raise NotImplementedError

    async def _send(self, client: ClientT, request: ModelRequest) -> Any:
        raise NotImplementedError

    def _response(
        self, request: ModelRequest, reply: Any, price: Price, started: float, /
    ) -> ModelResponse:
        raise NotImplementedError
