"""The system tier's deployments: `keel worker` and `keel api` processes on the dev server."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cli.devserver import DevServer
from keel.testing.stack import Stack
from tests.replays import assert_stack_runs_replay
from tests.system.secured import Secured, secured_stack


@pytest.fixture(scope="session")
async def stack(
    temporal: DevServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """`keel worker` and `keel api` processes sharing a SQLite file."""
    deployment = Stack(temporal.address, tmp_path_factory.mktemp("keel"))
    try:
        await deployment.start_worker()
        await deployment.start_api()
        yield deployment
    finally:
        deployment.stop_all()
    await assert_stack_runs_replay(deployment)


@pytest.fixture(scope="session")
async def secured(
    temporal: DevServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Secured]:
    """A worker and an API that require API keys, with one key per role (secured.py)."""
    async with secured_stack(temporal, tmp_path_factory.mktemp("secured")) as deployment:
        yield deployment
    await assert_stack_runs_replay(deployment.stack)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        yield client


@pytest.fixture
async def make_stack(temporal: DevServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Fresh deployments for tests that kill processes; stopped, then their runs replayed."""
    made: list[Stack] = []

    def make(**settings: str) -> Stack:
        deployment = Stack(temporal.address, tmp_path / f"keel-{len(made)}", settings)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.stop_all()
    for deployment in made:
        if deployment.processes:
            await assert_stack_runs_replay(deployment)
