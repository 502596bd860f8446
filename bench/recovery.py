"""Worker-kill recovery: a worker dies mid-call, how soon does the run move on elsewhere?

Real `keel worker` processes on one task queue. Each round: one worker runs a `support`
run whose answer call hangs at the model (the wire-protocol server holds it); a second
worker starts and stands by; the first is killed with SIGKILL. The figures are read off the
run's history, in the server's own clock:

- *kill → next step*: until the next history event that shows progress, the hung call
  completing on the standby worker (Temporal notices the missing heartbeats, retries the
  call, the standby answers it);
- *kill → run resumed*: until the standby worker completes the run's next workflow task
  (the run's cached state was on the dead worker: its sticky queue times out first).

The standby becomes the next round's worker, so each round costs one worker start.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from uuid import uuid4

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from bench._harness import (
    WIRE_KEY_ENV,
    Options,
    Row,
    Stats,
    admitted,
    progress,
    server_label,
    wire_server,
)
from cli.devserver import DevServer
from keel.run_client import RunClient
from keel.settings import Settings
from keel.temporal.connection import connect
from keel.testing.recording import WireRequest
from keel.testing.replies import Reply
from keel.testing.server import WireServer

__all__ = ["KILLS", "Recovery", "run"]

KILLS = 5
"""Rounds measured (each kills one worker)."""
_HANG_S = 120.0
_KEEL = str(Path(sys.executable).parent / "keel")


@dataclass(frozen=True)
class Recovery:
    """One round's figures, in seconds after the kill."""

    next_step_s: float
    resumed_s: float
    standby_took_over: bool


def _worker_env(server: DevServer, wire: WireServer, data_dir: Path, task_queue: str) -> dict:
    deployments = {
        "wire": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": wire.openai_base_url,
            "api_key_env": WIRE_KEY_ENV,
            "price": {"input": 0.0, "output": 0.0},
            "timeout_s": _HANG_S,
        }
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_TEMPORAL_ADDRESS=server.address,
        KEEL_TASK_QUEUE=task_queue,
        KEEL_DATA_DIR=str(data_dir),
        KEEL_DEPLOYMENTS=json.dumps(deployments),
        KEEL_ROUTES=json.dumps({"default": {"candidates": ["wire"]}}),
        **{WIRE_KEY_ENV: os.environ[WIRE_KEY_ENV]},
    )
    return env


async def _spawn(env: dict, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        process = subprocess.Popen([_KEEL, "worker"], env=env, stdout=out, stderr=out)
    while "polling" not in log.read_text(errors="replace"):
        if process.poll() is not None:
            raise RuntimeError(f"keel worker exited: {log.read_text(errors='replace')[-2000:]}")
        await asyncio.sleep(0.1)
    return process


@asynccontextmanager
async def _workers(
    server: DevServer, wire: WireServer
) -> AsyncIterator[tuple[Client, str, list[subprocess.Popen[bytes]], dict, Path]]:
    with tempfile.TemporaryDirectory(prefix="keel-bench-recovery-") as tmp:
        task_queue = f"bench-recovery-{uuid4()}"
        env = _worker_env(server, wire, Path(tmp), task_queue)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            client = await connect(Settings(temporal_address=server.address, data_dir=Path(tmp)))
            yield client, task_queue, processes, env, Path(tmp)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(30)


def _at(event: HistoryEvent) -> float:
    return event.event_time.ToDatetime(tzinfo=UTC).timestamp()


async def run(opts: Options, server: DevServer) -> list[Row]:
    """Kill the worker running a call, `KILLS` times, with a standby worker each time."""
    progress(f"worker-kill recovery, {KILLS} kills")
    rounds: list[Recovery] = []

    def responder(request: WireRequest) -> Reply:
        return Reply(text="Open the sign-in page and click Forgot password.", confidence=0.9)

    async with wire_server(responder) as wire, _workers(server, wire) as context:
        client, task_queue, processes, env, logs = context
        runs = RunClient(client)
        processes.append(await _spawn(env, logs / "worker-0.log"))
        for number in range(1, KILLS + 1):
            active = processes[-1]
            # classify answers at once; the answer call hangs on the worker about to die.
            wire.push(
                Reply(text="account", confidence=0.9),
                Reply.slow(_HANG_S, then=Reply(text="never delivered")),
                protocol="openai",
            )
            asked = len(wire.requests)
            admission = admitted(
                "support", "How do I reset my password?", review_threshold=0.0, review_timeout_s=60
            )
            await runs.start(admission, task_queue)
            while len(wire.requests) < asked + 2:  # the answer call hangs at the model
                await asyncio.sleep(0.02)
            standby = await _spawn(env, logs / f"worker-{number}.log")
            processes.append(standby)
            active.send_signal(signal.SIGKILL)
            killed_at = time.time()
            active.wait()
            wire.script.clear()  # the retry gets the responder's quick answer
            await asyncio.wait_for(runs.result(admission.run_id), timeout=120)
            rounds.append(await _figures(client, admission.run_id, killed_at, standby.pid))
    return [_row(rounds, server)]


async def _figures(client: Client, run_id: str, killed_at: float, standby: int) -> Recovery:
    history = await client.get_workflow_handle(run_id).fetch_history()
    events = list(history.events)
    step = next(
        e
        for e in events
        if e.WhichOneof("attributes") == "activity_task_completed_event_attributes"
        and _at(e) >= killed_at
    )
    started = next(
        e
        for e in events
        if e.event_id == step.activity_task_completed_event_attributes.started_event_id
    )
    took_over = started.activity_task_started_event_attributes.identity.startswith(f"{standby}@")
    resumed = next(
        e
        for e in events
        if e.WhichOneof("attributes") == "workflow_task_started_event_attributes"
        and e.event_id > step.event_id
        and e.workflow_task_started_event_attributes.identity.startswith(f"{standby}@")
    )
    return Recovery(_at(step) - killed_at, _at(resumed) - killed_at, took_over)


def _row(rounds: list[Recovery], server: DevServer) -> Row:
    steps = Stats(tuple(r.next_step_s for r in rounds))
    resumed = Stats(tuple(r.resumed_s for r in rounds))
    took_over = sum(r.standby_took_over for r in rounds)
    return Row(
        key="recovery",
        scenario="worker SIGKILL mid-call, standby worker",
        server=server_label(server),
        per_node=None,
        per_run=steps,
        notes=(
            f"kill → next step **{steps.median_ms / 1000:.1f} s** median "
            f"(max {max(steps.samples):.1f} s); kill → run resumed "
            f"{resumed.median_ms / 1000:.1f} s median (max {max(resumed.samples):.1f} s); "
            f"standby took over in {took_over}/{len(rounds)}"
        ),
    )
