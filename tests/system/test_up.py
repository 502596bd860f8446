"""`keel up`: the whole embedded stack from one command, stopped by Ctrl-C, resumed by the next."""

import asyncio
import os
import signal
import socket
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from cli.up import MAX_RESTARTS
from keel.net import free_port
from keel.testing.stack import KEEL, approve_and_finish, start_run, wait_status
from tests.conftest import CONFIDENT, UNSURE


class _Up:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.api_port, self.temporal_port, self.ui_port = free_port(), free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        return {
            **env,
            "KEEL_API_PORT": str(self.api_port),
            "KEEL_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "KEEL_TEMPORAL_UI_PORT": str(self.ui_port),
        }

    @property
    def output(self) -> str:
        return (self.root / "up.log").read_text(errors="replace")

    async def start(self) -> None:
        seen = len(self.output) if (self.root / "up.log").exists() else 0
        with open(self.root / "up.log", "ab") as log:
            # Run from `root` so the default data directory `./.keel` lands there.
            self.process = subprocess.Popen(
                [KEEL, "up"], cwd=self.root, env=self.env(), stdout=log, stderr=subprocess.STDOUT
            )
        for _ in range(600):
            if "Keel is up." in self.output[seen:] or self.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert "Keel is up." in self.output[seen:], self.output

    async def interrupt(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        for _ in range(300):
            if self.process.poll() is not None:
                return self.process.returncode
            await asyncio.sleep(0.1)
        self.process.kill()
        raise AssertionError("keel up did not stop within 30 s:\n" + self.output)


async def test_up_serves_stops_cleanly_and_resumes_in_flight_runs(tmp_path):
    up = _Up(tmp_path)
    await up.start()
    try:
        banner = up.output
        assert f"http://127.0.0.1:{up.api_port}" in banner
        assert f"Temporal UI  http://127.0.0.1:{up.ui_port}" in banner
        assert "Auth         OPEN: no API key exists" in banner  # loudly, on loopback only
        assert "Payloads     encrypted" in banner
        key_file = tmp_path / ".keel" / "payload-keys.json"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_bytes()
        codec = f"http://127.0.0.1:{up.api_port}/codec"
        async with httpx.AsyncClient(timeout=30) as http:
            ui = await http.get(f"http://127.0.0.1:{up.ui_port}/")
            assert ui.status_code == 200 and "<html" in ui.text.lower()
            # The UI sends payloads to the API's codec server, which takes its page's calls.
            ui_settings = await http.get(f"http://127.0.0.1:{up.ui_port}/api/v1/settings")
            assert ui_settings.json()["Codec"]["Endpoint"] == codec
            ui_origin = {"Origin": f"http://127.0.0.1:{up.ui_port}", "Sec-Fetch-Site": "same-site"}
            decoded = await http.post(f"{codec}/decode", json={"payloads": []}, headers=ui_origin)
            assert decoded.status_code == 200, decoded.text
            elsewhere = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
            refused = await http.post(f"{codec}/decode", json={"payloads": []}, headers=elsewhere)
            assert refused.status_code == 403, refused.text
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{up.api_port}", timeout=30
        ) as http:
            assert (await http.get("/docs")).status_code == 200
            done = await wait_status(
                http, (await start_run(http, CONFIDENT))["run_id"], {"completed"}
            )
            assert done["result"]["citations"]
            waiting = (await start_run(http, UNSURE))["run_id"]
            review = (await wait_status(http, waiting, {"awaiting_review"}))["pending_review"]
    finally:
        code = await up.interrupt()
    assert code == 0, up.output
    assert "stopped;" in up.output and "Traceback" not in up.output
    # Libraries' debug lines and Presidio's start-up lines stay out of the console.
    assert " DEBUG " not in up.output and "presidio" not in up.output
    assert (tmp_path / ".keel" / "temporal.db").exists()
    assert (tmp_path / ".keel" / "keel.db").exists()

    await up.start()  # same data directory: the run waiting for review is still there
    assert key_file.read_bytes() == key  # and the key that encrypted it
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{up.api_port}", timeout=30
        ) as http:
            again = await wait_status(http, waiting, {"awaiting_review"})
            assert again["pending_review"]["review_id"] == review["review_id"]
            await approve_and_finish(http, review)
    finally:
        assert await up.interrupt() == 0, up.output


async def test_up_on_a_busy_port_says_which(tmp_path):
    up = _Up(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", up.api_port))
        holder.listen()
        process = await asyncio.create_subprocess_exec(
            KEEL, "up", cwd=tmp_path, env=up.env(), stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert f"port {up.api_port} on 127.0.0.1 is already in use" in err.decode()
    assert "Traceback" not in err.decode()


def _dev_server_pid(up: _Up) -> int:
    found = subprocess.run(
        ["pgrep", "-f", f"temporal server start-dev.*--port {up.temporal_port} "],
        capture_output=True,
        text=True,
    )
    return int(found.stdout.split()[0])


async def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    while Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid):
        await asyncio.sleep(0.01)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return "zombie"


async def _restarted(up: _Up, times: int) -> None:
    for _ in range(600):
        if up.output.count("dev server is back") >= times:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the dev server was not restarted {times} times:\n{up.output}")


async def test_up_restarts_a_dead_dev_server_and_stops_when_it_keeps_dying(tmp_path):
    up = _Up(tmp_path)
    await up.start()
    try:
        await _kill(_dev_server_pid(up))
        await _restarted(up, 1)
        assert f"restarting it on {Path('.keel') / 'temporal.db'}" in up.output
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{up.api_port}", timeout=30
        ) as http:
            run = await start_run(http, CONFIDENT)
            assert (await wait_status(http, run["run_id"], {"completed"}))["result"]["answer"]

        # A server that keeps dying stops the whole stack rather than leaving it half-alive.
        for times in range(2, MAX_RESTARTS + 1):
            await _kill(_dev_server_pid(up))
            await _restarted(up, times)
        await _kill(_dev_server_pid(up))
        assert up.process is not None
        code = await asyncio.to_thread(up.process.wait, 120)
    finally:
        if up.process is not None and up.process.poll() is None:
            await up.interrupt()
    assert code == 1, up.output
    assert f"died {MAX_RESTARTS + 1} times" in up.output and "stopping Keel" in up.output
    assert "Traceback" not in up.output
    async with httpx.AsyncClient(timeout=5) as http:  # nothing half-alive is left
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{up.api_port}/healthz")
