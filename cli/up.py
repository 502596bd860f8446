"""Process entry points: `keel up` (the embedded stack), `keel worker`, `keel api`, `keel ping`.

`keel up` runs the Temporal dev server as a child process and the worker and the API in
this process. Ctrl-C (or SIGTERM) stops the API, then the worker, then the server; the
next `keel up` finds every run where it was, because Temporal's state is a SQLite file in
the data directory.
"""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from cli.devserver import DevServer
from keel.db import create_engine, init_db
from keel.errors import KeelUserError
from keel.net import port_in_use
from keel.settings import Settings
from keel.telemetry import telemetry

__all__ = ["ping", "run_api", "run_up", "run_worker_process"]

log = logging.getLogger("keel")


class _ApiServer(uvicorn.Server):
    """Uvicorn, stopped by our own signal handling rather than its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _api_server(settings: Settings) -> _ApiServer:
    from api.app import create_app

    if port_in_use(settings.api_host, settings.api_port):
        raise KeelUserError(
            f"port {settings.api_port} on {settings.api_host} is already in use: "
            "stop what listens there, or set KEEL_API_PORT"
        )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        lifespan="on",
        timeout_keep_alive=settings.api_keep_alive_s,
    )
    return _ApiServer(config)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _until_stopped(stop: asyncio.Event, *tasks: asyncio.Task[None]) -> None:
    """Wait for a signal, or for one of `tasks` to end (an error there stops everything)."""
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    for task in done - {waiter}:
        task.result()  # re-raise a part's failure


async def run_worker_process(settings: Settings) -> None:
    """`keel worker`: one worker against `settings.temporal_address`, until a signal."""
    from worker.main import run_worker

    async with telemetry(settings, "worker", metrics_port=settings.metrics_port):
        await run_worker(settings, _stop_on_signals())


async def run_api(settings: Settings) -> None:
    """`keel api`: the REST API, until a signal."""
    from api.auth import check_auth_mode

    server = _api_server(settings)
    await check_auth_mode(settings)  # warns when open; refuses to run open off loopback
    stop = _stop_on_signals()
    async with telemetry(settings, "api", metrics_port=settings.api_metrics_port):
        serving = asyncio.create_task(server.serve())
        try:
            await _until_stopped(stop, serving)
        finally:
            server.should_exit = True
            await serving


async def run_up(settings: Settings) -> None:
    """`keel up`: the Temporal dev server, a worker and the API, until Ctrl-C."""
    from worker.main import run_worker

    host, _, port = settings.temporal_address.rpartition(":")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = DevServer(
        db_file=settings.data_dir / "temporal.db",
        ip=host,
        port=int(port),
        ui_port=settings.temporal_ui_port,
        tuned=settings.temporal_dev_tuned,
        log_file=settings.data_dir / "temporal.log",
    )
    from api.auth import check_auth_mode

    api = _api_server(settings)  # fail on a busy API port before starting anything
    auth_open = await check_auth_mode(settings)  # and on open mode off loopback
    await server.start()
    engine = create_engine(settings.sql_url)
    try:
        await init_db(engine)  # once, before the worker and the API both look
    finally:
        await engine.dispose()
    stop = _stop_on_signals()
    worker_stop = asyncio.Event()
    try:
        async with telemetry(settings, "up", metrics_port=settings.api_metrics_port):
            worker = asyncio.create_task(run_worker(settings, worker_stop))
            serving = asyncio.create_task(api.serve())
            try:
                while not api.started and not serving.done():
                    await asyncio.sleep(0.05)
                _print_banner(settings, server, auth_open)
                await _until_stopped(stop, worker, serving)
            finally:
                print("\nstopping: api, worker, temporal …", flush=True)
                api.should_exit = True
                worker_stop.set()
                await asyncio.gather(serving, worker, return_exceptions=True)
    finally:
        await server.stop()
        print("stopped; runs in flight continue at the next `keel up`.", flush=True)


async def ping(settings: Settings) -> None:
    """`keel ping`: succeed when Temporal and the database answer."""
    from keel.temporal.connection import connect

    client = await connect(settings)
    if not await client.service_client.check_health():
        raise KeelUserError(f"Temporal at {settings.temporal_address} is not serving")
    engine = create_engine(settings.sql_url)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
    finally:
        await engine.dispose()


def _print_banner(settings: Settings, server: DevServer, auth_open: bool) -> None:
    tuning = "tuned" if server.tuned else "untuned"
    auth = (
        "OPEN: no API key exists, every local caller is an admin\n"
        "               (for a first try; `keel keys create --role admin --name you` ends it)"
        if auth_open
        else "API keys required (the CLI sends KEEL_API_KEY)"
    )
    print(
        "\nKeel is up.\n"
        f"  API          {settings.api_base_url}   (docs: {settings.api_base_url}/docs)\n"
        f"  Temporal UI  {settings.ui_url}\n"
        f"  Temporal     {server.address}   (dev server, {tuning}; state in {server.db_file})\n"
        f"  Worker       task queue {settings.task_queue!r}\n"
        f"  Database     {settings.sql_url}\n"
        f"  Auth         {auth}\n\n"
        f'Try:  keel run support "How do I reset my password?" --wait\n'
        "Ctrl-C stops everything.\n",
        flush=True,
    )
