"""Fixtures for the wire server tests: one server per module, reset per test, real SDK clients."""

from collections.abc import Callable, Iterator

import anthropic
import openai
import pytest

from keel.testing.server import WireServer
from tests.workflows.wire.support import ANTHROPIC_KEY, OPENAI_KEY, QUESTION


@pytest.fixture(scope="module")
def server() -> Iterator[WireServer]:
    with WireServer() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(server: WireServer) -> None:
    server.reset()


@pytest.fixture
def oai(server: WireServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=server.openai_base_url, api_key=OPENAI_KEY, max_retries=0
    ) as client:
        yield client


@pytest.fixture
def claude(server: WireServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=server.anthropic_base_url, api_key=ANTHROPIC_KEY, max_retries=0
    ) as client:
        yield client


@pytest.fixture
def ask(oai: openai.OpenAI, claude: anthropic.Anthropic) -> Callable[..., Callable[[], object]]:
    """`ask(protocol, timeout=None)`: a call that sends QUESTION with that protocol's SDK."""

    def make(protocol: str, timeout: float | None = None) -> Callable[[], object]:
        if protocol == "openai":
            client = oai.with_options(timeout=timeout) if timeout else oai
            return lambda: client.chat.completions.create(model="gpt-test", messages=QUESTION)
        sdk = claude.with_options(timeout=timeout) if timeout else claude
        return lambda: sdk.messages.create(model="claude-test", max_tokens=64, messages=QUESTION)

    return make
