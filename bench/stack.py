"""One embedded deployment for the bench: dev server, `keel worker`(s) and `keel api`.

Real processes, launched by `keel.testing.stack.Stack` (the launcher of the fault-injection
tests), each started like `keel up` starts them, with the default workflow cache.
"""

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from temporalio.client import Client

from bench._harness import journal_rows
from bench.memory import children, load_average, resident_mb, rss_mb
from cli.devserver import DevServer
from keel.db import Database, create_engine
from keel.net import free_port
from keel.run_client import RunClient
from keel.schemas.runs import RunResult
from keel.settings import Settings
from keel.temporal.connection import connect
from keel.testing.stack import Stack, wait_status
from tools.retrieval.builtin import KB_DIR, markdown_documents

__all__ = [
    "CONFIDENT",
    "UNSURE",
    "EmbeddedStack",
    "drain",
    "UpMemory",
    "embedded_stack",
    "keel_up_memory",
]

CONFIDENT = "How do I reset my password?"
"""Answered without review by the keyless `local` model."""
UNSURE = "it doesn't work"
"""Escalated to a reviewer (too vague to answer with confidence)."""


@dataclass
class EmbeddedStack:
    """The processes of one embedded deployment and clients to drive it."""

    stack: Stack
    server: DevServer
    client: Client
    http: httpx.AsyncClient

    @property
    def pids(self) -> list[int]:
        """The dev server, the worker and the API: every process this bench started."""
        return children(os.getpid())

    async def journal_rows(self) -> int:
        """Activity executions the worker journaled so far."""
        url = self.stack.settings.get(
            "KEEL_DATABASE_URL", f"sqlite+aiosqlite:///{self.stack.db_file}"
        )
        database = Database(create_engine(url))
        try:
            return await journal_rows(database.sessions)
        finally:
            await database.dispose()

    async def start(self, question: str) -> str:
        """`POST /v1/runs` a support question; the run's id."""
        response = await self.http.post(
            "/v1/runs", json={"agent": "support", "input": {"question": question}}
        )
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/runs answered {response.status_code}: {response.text}")
        return response.json()["run_id"]

    async def finish(self, run_id: str) -> RunResult:
        """The run's result (a long poll on Temporal)."""
        return await RunClient(self.client).result(run_id)

    async def support_run(self) -> None:
        """One confident support run, start to result."""
        result = await self.finish(await self.start(CONFIDENT))
        if result.status != "completed" or result.outcome.reviewed:
            raise RuntimeError(f"the support run did not complete without review: {result!r}")


@asynccontextmanager
async def embedded_stack(
    server: DevServer, workers: int = 1, **settings: str
) -> AsyncIterator[EmbeddedStack]:
    """`workers` worker processes and an API process on `server`, their state in a
    temporary directory."""
    with tempfile.TemporaryDirectory(prefix="keel-bench-stack-") as tmp:
        # The default workflow cache, as `keel up` runs it (tests replay every task). Every
        # client is one keyless address here: the bench measures the engine, not its limits.
        stack = Stack(
            server.address,
            Path(tmp),
            {
                "KEEL_WORKER_MAX_CACHED_WORKFLOWS": str(Settings().worker_max_cached_workflows),
                "KEEL_API_ADDRESS_RATE_PER_S": "1e6",
                "KEEL_API_ADDRESS_RATE_BURST": "1000000",
            }
            | settings,
        )
        try:
            for _ in range(workers):
                await stack.start_worker()
            await stack.start_api()
            client = await connect(Settings(temporal_address=server.address, data_dir=Path(tmp)))
            limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
            async with httpx.AsyncClient(
                base_url=stack.api_url, timeout=120, limits=limits
            ) as http:
                yield EmbeddedStack(stack, server, client, http)
        finally:
            stack.stop_all()


@dataclass(frozen=True)
class UpMemory:
    """Resident memory of `keel up`: idle after support runs, then once a collection embeds."""

    idle_mb: float
    parts: dict[str, float]
    load: str
    embedding_mb: float
    """The same total once a new collection (default: hybrid) was ingested and searched."""


async def keel_up_memory(runs: int = 5) -> UpMemory:
    """`keel up` alone: resident memory idle after `runs` support runs, then with vectors.

    The collection is new (so hybrid) and holds the help-centre articles: ingesting and
    searching it loads the built-in embedding model.
    """
    with tempfile.TemporaryDirectory(prefix="keel-bench-up-") as tmp:
        settings = {
            "KEEL_TEMPORAL_UI_PORT": str(free_port()),
            "KEEL_WORKER_MAX_CACHED_WORKFLOWS": str(Settings().worker_max_cached_workflows),
        }
        stack = Stack(f"127.0.0.1:{free_port()}", Path(tmp), settings)
        try:
            up = await stack.start_up()
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=120) as http:
                for _ in range(runs):
                    response = await http.post(
                        "/v1/runs", json={"agent": "support", "input": {"question": CONFIDENT}}
                    )
                    await wait_status(http, response.json()["run_id"], {"completed"})
                await asyncio.sleep(2)
                parts = {"keel up": rss_mb(up.pid), "temporal": resident_mb(children(up.pid))}
                load = load_average()
                await http.post("/v1/collections", json={"name": "bench-memory"})
                documents = [d.model_dump(mode="json") for d in markdown_documents(KB_DIR)]
                ingested = await http.post(
                    "/v1/collections/bench-memory/documents",
                    params={"wait": 60},
                    json={"documents": documents},
                )
                ingested.raise_for_status()
                searched = await http.post(
                    "/v1/collections/bench-memory/search", json={"query": CONFIDENT}
                )
                searched.raise_for_status()
                await asyncio.sleep(2)
                embedding = rss_mb(up.pid) + resident_mb(children(up.pid))
            return UpMemory(sum(parts.values()), parts, load, embedding)
        finally:
            stack.stop_all()


async def drain(stack: EmbeddedStack, timeout: float = 120.0) -> None:
    """Wait until no run is open: the POST scenario leaves its runs to the worker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = await stack.client.count_workflows("ExecutionStatus = 'Running'")
        if count.count == 0:
            return
        await asyncio.sleep(0.5)
