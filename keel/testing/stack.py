"""Real processes for tests: `keel worker` and `keel api`, as production runs them."""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
import warnings
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory

from keel.net import free_port
from keel.schemas.runs import TERMINAL_STATUSES
from keel.testing.replies import Reply, Usage
from keel.testing.server import WireServer

KEEL = str(Path(sys.executable).parent / "keel")


@dataclass
class Stack:
    """One Keel deployment on a shared dev server: its own task queue, database and API port."""

    temporal_address: str
    data_dir: Path
    settings: dict[str, str] = field(default_factory=dict[str, str])
    task_queue: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:12]}")
    api_port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list[subprocess.Popen[bytes]])

    @property
    def api_url(self) -> str:
        """The API's base URL."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def db_file(self) -> Path:
        """The stack's SQLite database."""
        return self.data_dir / "keel.db"

    def env(self) -> dict[str, str]:
        """The environment of the stack's processes."""
        # Nothing of the caller's Keel settings or provider keys leaks into a test stack.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("KEEL_") and k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
        }
        env.update(
            KEEL_TEMPORAL_ADDRESS=self.temporal_address,
            KEEL_TASK_QUEUE=self.task_queue,
            KEEL_DATA_DIR=str(self.data_dir),
            KEEL_API_PORT=str(self.api_port),
        )
        env.update(self.settings)  # a test's own settings win over these
        return env

    def spawn(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        """Start `keel *args`, its output appended to the data directory's `log`."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / log, "ab") as out:
            process = subprocess.Popen(
                [KEEL, *args], env=self.env(), stdout=out, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    async def start_worker(self) -> subprocess.Popen[bytes]:
        """`keel worker`, once it polls its task queue."""
        worker = self.spawn("worker", log="worker.log")
        # The worker is ready once it polls; its log says so.
        await _until(lambda: "polling" in self.log("worker.log") or worker.poll() is not None)
        assert worker.poll() is None, self.log("worker.log")
        return worker

    async def start_api(self) -> subprocess.Popen[bytes]:
        """`keel api`, once it answers."""
        return await self._serving(self.spawn("api", log="api.log"), "api.log")

    async def start_up(self) -> subprocess.Popen[bytes]:
        """`keel up`: its own dev server at `temporal_address`, the worker and the API."""
        return await self._serving(self.spawn("up", log="up.log"), "up.log")

    async def _serving(self, api: subprocess.Popen[bytes], log: str) -> subprocess.Popen[bytes]:
        """`api` once its API answers (it fails the test if the process ended first)."""
        async with httpx.AsyncClient(base_url=self.api_url) as http:

            async def healthy() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await _until_async(healthy, lambda: api.poll() is not None)
        assert api.poll() is None, self.log(log)
        return api

    def log(self, name: str) -> str:
        """The text of a log in the data directory (empty before it exists)."""
        path = self.data_dir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        """SIGTERM every process the stack started, then wait (a kill after 20 s)."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _until(done: Any, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not done():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("process did not become ready")
        await asyncio.sleep(0.1)


async def _until_async(ready: Any, failed: Any, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await ready():
        if failed() or asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.1)


async def wait_status(
    http: httpx.AsyncClient, run_id: str, statuses: set[str], timeout: float = 45.0
) -> dict[str, Any]:
    """Poll a run until its status is one of `statuses`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        run = (await http.get(f"/v1/runs/{run_id}")).raise_for_status().json()
        if run["status"] in statuses:
            return run
        assert run["status"] not in TERMINAL_STATUSES, run
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"run {run_id} still {run['status']}")
        await asyncio.sleep(0.1)


async def start_run(http: httpx.AsyncClient, question: str, **extra: Any) -> dict[str, Any]:
    """Start a `support` run over the API; its 202 body."""
    response = await http.post("/v1/runs", json={"agent": "support", "input": question, **extra})
    assert response.status_code == 202, response.text
    return response.json()


async def approve_and_finish(http: httpx.AsyncClient, review: dict[str, Any]) -> dict[str, Any]:
    """Approve a run's pending review (as the run view shows it); the run once it completes."""
    decided = await http.post(
        f"/v1/reviews/{review['review_id']}/decision",
        json={"action": "approve", "action_hash": review["action_hash"]},
    )
    assert decided.status_code == 200, decided.text
    run_id = review["review_id"].rpartition(".")[0]
    done = await wait_status(http, run_id, {"completed"})
    assert done["result"]["answer"] == review["proposed_answer"]
    return done


async def eventually(check: Any, timeout: float = 15.0) -> None:
    """Wait until `await check()` is true: Temporal's visibility catches up asynchronously."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still not true after {timeout:.0f} s: {check.__name__}")
        await asyncio.sleep(0.2)


def openai_route(
    wire: WireServer, price: dict[str, float] | None = None, **deployment: Any
) -> dict[str, str]:
    """Stack settings whose `default` route is one OpenAI deployment, `gpt`, served by `wire`."""
    gpt = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": wire.openai_base_url,
        "price": price or {"input": 1.0, "output": 2.0},
        **deployment,
    }
    return {
        "KEEL_DEPLOYMENTS": json.dumps({"gpt": gpt}),
        "KEEL_ROUTES": json.dumps({"default": {"candidates": ["gpt"]}}),
        "OPENAI_API_KEY": "sk-test",
    }


def hang_the_answer(wire: WireServer, usage: Usage, seconds: float) -> None:
    """Script a support run whose `answer` call hangs `seconds`.

    `classify` answers at once, and every later request (the retried answer) answers
    confidently.
    """
    wire.push(
        Reply(text="account", usage=usage, confidence=0.9),
        Reply.slow(seconds, then=Reply(text="never delivered", usage=usage)),
        protocol="openai",
    )
    wire.script.responder = lambda request: Reply(
        text="Click Forgot password.", usage=usage, confidence=0.9
    )


def fresh_python(script: str) -> list[str]:
    """The lines `script` prints, run by a fresh interpreter in the repository."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def local_activities(history: WorkflowHistory) -> list[str]:
    """The activity types of a history's local activities, from their markers, in order."""
    types: list[str] = []
    for event in history.events:
        marker = event.marker_recorded_event_attributes
        if event.HasField("marker_recorded_event_attributes") and "data" in marker.details:
            for payload in marker.details["data"].payloads:
                types.append(json.loads(payload.data)["activity_type"])
    return types


def payloads_in(*messages: Message) -> list[Payload]:
    """Every payload in protobuf messages (history events), however deep, as stored."""
    return [payload for message in messages for payload in _payloads(message)]


def _payloads(message: Message) -> Iterator[Payload]:
    if isinstance(message, Payload):
        yield message
        return
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.is_repeated:
            items = value.values() if descriptor.message_type.GetOptions().map_entry else value
            for item in items:
                yield from _payloads(item)
        else:
            yield from _payloads(value)


@contextmanager
def local_postgres() -> Generator[str]:
    """A real PostgreSQL with pgvector (`pgserver`) on a temporary data dir: its URL.

    Not under pytest's temporary root: as root, pgserver runs PostgreSQL as its own user,
    and pytest keeps resetting that root to mode 0700.
    """
    with warnings.catch_warnings():  # platformdirs warns that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server  # noqa: PLC0415  (slow test dependency)

        data = Path(tempfile.mkdtemp(prefix="keel-pg-")) / "data"
        server = get_server(data, cleanup_mode="delete")
    socket_dir = server.get_uri().rsplit("host=", 1)[1]
    try:
        yield f"postgresql+asyncpg://postgres@/postgres?host={socket_dir}"
    finally:
        server.cleanup()
        shutil.rmtree(data.parent, ignore_errors=True)
