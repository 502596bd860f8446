"""Process entry points: `keel up` (the embedded stack), `keel worker`, `keel api`, `keel ping`.

`keel up` runs the Temporal dev server as a child process and the worker and the API in
this process. Ctrl-C (or SIGTERM) stops the API, then the worker, then the server; the
next `keel up` finds every run where it was, because Temporal's state is a SQLite file in
the data directory.

`keel up` supervises the dev server it started. When the server dies (killed, crashed, out
of memory) it is restarted on the same database after `RESTART_DELAY_S`, with a message;
the worker and the API reconnect by themselves and the runs continue where they were.
When it cannot be restarted, or dies more than `MAX_RESTARTS` times within
`RESTART_WINDOW_S`, the whole stack stops and `keel up` exits non-zero: never an API and
a worker left running without their server.
"""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from cli.devserver import DevServer
from keel.db import create_engine, init_db
from keel.encryption import KEY_FILE, create_key_file, keyring
from keel.errors import KeelUserError
from keel.net import port_in_use
from keel.settings import Settings
from keel.telemetry import telemetry

__all__ = [
    "MAX_RESTARTS",
    "RESTART_DELAY_S",
    "RESTART_WINDOW_S",
    "ping",
    "run_api",
    "run_up",
    "run_worker_process",
]

log = logging.getLogger("keel")

MAX_RESTARTS = 3
"""Restarts of the dev server allowed within `RESTART_WINDOW_S`; one more stops the stack."""
RESTART_WINDOW_S = 300.0
RESTART_DELAY_S = 1.0
"""Pause before a restart: the dead server's sockets and SQLite locks are released."""


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


async def _supervise(server: DevServer) -> None:
    """Restart `server` whenever it dies; raise when it cannot be kept alive (module docstring)."""
    loop = asyncio.get_running_loop()
    deaths: list[float] = []
    while True:
        code = await server.exited()
        now = loop.time()
        deaths = [t for t in deaths if now - t < RESTART_WINDOW_S] + [now]
        if len(deaths) > MAX_RESTARTS:
            raise KeelUserError(
                f"the Temporal dev server died {len(deaths)} times in "
                f"{RESTART_WINDOW_S:.0f}s (last exit code {code}); stopping Keel. "
                f"See {server.log_file}"
            )
        print(
            f"\nthe Temporal dev server exited (code {code}); restarting it on {server.db_file} …",
            flush=True,
        )
        await asyncio.sleep(RESTART_DELAY_S)
        try:
            await server.start()
        except KeelUserError as err:
            raise KeelUserError(
                f"the Temporal dev server died (code {code}) and could not be restarted: "
                f"{err}; stopping Keel"
            ) from err
        print(f"the Temporal dev server is back on {server.address}.", flush=True)


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
    if settings.payload_keyring is None and create_key_file(settings.data_dir / KEY_FILE):
        log.warning("payload encryption: created a key in %s", settings.data_dir / KEY_FILE)
    server = DevServer(
        db_file=settings.data_dir / "temporal.db",
        ip=host,
        port=int(port),
        ui_port=settings.temporal_ui_port,
        tuned=settings.temporal_dev_tuned,
        log_file=settings.data_dir / "temporal.log",
        ui_codec_endpoint=_codec_endpoint(settings),
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
            polling = asyncio.Event()
            worker = asyncio.create_task(run_worker(settings, worker_stop, polling))
            serving = asyncio.create_task(api.serve())
            supervising = asyncio.create_task(_supervise(server))
            try:
                # "Keel is up" once the API serves and the worker polls (or one has failed).
                while not (api.started and polling.is_set()) and not (
                    serving.done() or worker.done()
                ):
                    await asyncio.sleep(0.05)
                _print_banner(settings, server, auth_open)
                await _until_stopped(stop, worker, serving, supervising)
            finally:
                print("\nstopping: api, worker, temporal …", flush=True)
                supervising.cancel()
                api.should_exit = True
                worker_stop.set()
                await asyncio.gather(serving, worker, supervising, return_exceptions=True)
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
        f"  Auth         {auth}\n"
        f"  Payloads     {_encryption(settings)}\n\n"
        f'Try:  keel run support "How do I reset my password?" --wait\n'
        "Ctrl-C stops everything.\n",
        flush=True,
    )


def _encryption(settings: Settings) -> str:
    keys = keyring(settings)
    if keys is None:
        return "in clear (no payload keyring)"
    where = "KEEL_PAYLOAD_KEYRING" if settings.payload_keyring else settings.data_dir / KEY_FILE
    return (
        f"encrypted, key {keys.current!r} ({where});\n"
        f"               the UI decodes them through {_codec_endpoint(settings)}"
    )


def _codec_endpoint(settings: Settings) -> str | None:
    """The API's codec server, when payloads are encrypted."""
    from api.routes.codec import router

    return None if keyring(settings) is None else f"{settings.api_base_url}{router.prefix}"
