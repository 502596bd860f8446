"""The model client: one entry point for every model call, routed by name.

Agents name a route, never a provider. A route maps to one provider here; the routing
issue grows this into candidate lists and strategies.
"""

from typing import Protocol

from keel.errors import KeelUserError
from keel.schemas.model import ModelRequest, ModelResponse

__all__ = ["ModelClient", "Provider"]


class Provider(Protocol):
    """A model provider: turns a normalised request into a normalised response."""

    name: str

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Answer `request`."""
        ...


class ModelClient:
    """Routes each request to the provider its route names."""

    def __init__(self, providers: list[Provider], routes: dict[str, str]) -> None:
        self._providers = {p.name: p for p in providers}
        for route, provider in routes.items():
            if provider not in self._providers:
                raise KeelUserError(
                    f"route {route!r} names provider {provider!r}; "
                    f"known providers: {sorted(self._providers)}"
                )
        self._routes = dict(routes)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Answer `request` on its route's provider."""
        try:
            provider = self._routes[request.route]
        except KeyError:
            raise KeelUserError(
                f"unknown model route {request.route!r}; routes: {sorted(self._routes)}"
            ) from None
        return await self._providers[provider].complete(request)
