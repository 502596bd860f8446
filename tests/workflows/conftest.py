"""Fixtures of the workflows tier: an in-process worker on the suite's dev server."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cli.devserver import DevServer
from keel.settings import Settings
from tests.replays import assert_runs_replay
from worker.main import keel_worker


@pytest.fixture
async def settings(temporal: DevServer, tmp_path: Path) -> AsyncIterator[Settings]:
    """A worker of its own on the suite's dev server; its settings. Its runs replay after."""
    own = Settings(
        temporal_address=temporal.address,
        data_dir=tmp_path,
        task_queue=f"worker-{uuid.uuid4().hex[:8]}",
    )
    async with keel_worker(own) as worker:
        yield own
    await assert_runs_replay(own, worker.client)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The test's `backend` parameter as a database URL: a SQLite file of the test's own, or
    the suite's real PostgreSQL."""
    if backend == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite+aiosqlite:///{tmp_path / 'keel.db'}"
