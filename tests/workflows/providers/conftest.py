"""Fixtures for the provider adapter tests: one wire server per module, adapters built on it."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from keel.schemas.routing import Deployment
from keel.testing.server import WireServer
from tests.workflows.providers.support import KEY_ENV, SECRET, Make
from tools.models.providers.anthropic import AnthropicProvider
from tools.models.providers.openai import OpenAIProvider


@pytest.fixture(scope="module")
def server() -> Iterator[WireServer]:
    with WireServer() as running:
        yield running


@pytest.fixture
async def make(server: WireServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Make]:
    """Builds an adapter for a deployment on the wire server; closes it after the test."""
    server.reset()
    monkeypatch.setenv(KEY_ENV, SECRET)
    made: list[OpenAIProvider | AnthropicProvider] = []

    def build(provider: str = "openai", **fields: Any) -> OpenAIProvider | AnthropicProvider:
        base_url = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
        spec = Deployment.model_validate(
            {
                "provider": provider,
                "model": "claude-sonnet-4-5" if provider == "anthropic" else "gpt-4o",
                "api_key_env": KEY_ENV,
                "base_url": base_url,
                "timeout_s": 5.0,
            }
            | fields
        )
        adapter = (
            AnthropicProvider("ant", spec)
            if provider == "anthropic"
            else OpenAIProvider("oai", spec)
        )
        made.append(adapter)
        return adapter

    yield build
    for adapter in made:
        await adapter.aclose()
