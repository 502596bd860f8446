"""A run reading a large document: the payload store keeps it, the history stays small."""

import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest
from temporalio.client import Client

from keel.testing.stack import payloads_in, wait_status

OFFLOAD = 128 * 1024
FIVE_MB = 5 * 1024 * 1024


class _BigPage(http.server.BaseHTTPRequestHandler):
    body = ("All work and no play makes Jack a dull boy. " * (FIVE_MB // 44 + 1)).encode()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def big_page() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BigPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # By name: the guards take an IP address in a tool's arguments for personal data.
    yield f"http://localhost:{server.server_port}/handbook.txt"
    server.shutdown()


async def test_a_run_reading_a_5_mb_document_completes_with_a_small_history(
    make_stack, big_page: str, temporal_client: Client
):
    stack = make_stack(
        KEEL_HTTP_GET_ALLOW_HOSTS='["localhost"]',
        KEEL_HTTP_GET_ALLOW_PRIVATE="true",
        KEEL_HTTP_GET_MAX_BYTES=str(2 * FIVE_MB),
        # As in production: a cached run does not replay its 5 MB state for every task.
        KEEL_WORKER_MAX_CACHED_WORKFLOWS="10",
    )
    await stack.start_worker()
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
        body = {"agent": "assistant", "input": {"message": f"Please read {big_page}"}}
        started = await http.post("/v1/runs", json=body)
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        done = await wait_status(http, run_id, {"completed"}, timeout=120)
    # The model answered from the document (the local provider quotes the start of a result).
    assert done["result"]["answer"].startswith('http_get: {"content_type": "text/plain')
    assert "All work and no play" in done["result"]["answer"]

    history = await temporal_client.get_workflow_handle(run_id).fetch_history()
    payloads = payloads_in(*history.events)
    assert max(p.ByteSize() for p in payloads) < OFFLOAD, "a large payload stayed in history"
    assert sum(p.ByteSize() for p in payloads) < 256 * 1024
    # The document itself went through as the tool's result (the `local` model that read it
    # is a local activity: its input is not part of the history).
    outside = [e.size_bytes for p in payloads for e in p.external_payloads]
    assert sum(size > FIVE_MB for size in outside) == 1, outside
    stored = [p for p in (stack.data_dir / "payloads").rglob("*") if p.is_file()]
    assert stored and max(p.stat().st_size for p in stored) > FIVE_MB
