"""`http_get` against a real HTTP server on 127.0.0.1, and its refusals.

No test here sends a packet beyond loopback. A Python audit hook, active during these tests
only, records every socket connect and name resolution, and *refuses* (raises in) a
connect to any non-loopback address: so "refused before any connection" is checked
against what the process really did, and a regression cannot reach the network.
"""

import ipaddress
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from keel.schemas.tools import ToolCallInput, ToolOutcome
from tools.builtin.http_get import http_get
from tools.builtin.resources import Resources
from tools.registry import ToolContext

MAX_BYTES = 1000
ENDLESS_CAP = 50_000_000  # the server gives up here; the client must stop long before


# --- what the process did on the network ------------------------------------------------


@dataclass
class _Network:
    watching: bool = False
    connects: list[str] = field(default_factory=list)
    resolves: list[str] = field(default_factory=list)


_NETWORK = _Network()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _NETWORK.watching:
        return
    if event == "socket.getaddrinfo":
        host = args[0]  # anyio passes bytes
        _NETWORK.resolves.append(host.decode() if isinstance(host, bytes) else str(host))
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = str(args[1][0])
        _NETWORK.connects.append(host)
        if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            raise PermissionError(f"test isolation: refused a connect to {host}")


sys.addaudithook(_audit)  # hooks cannot be removed; it is inert unless `watching`


@pytest.fixture(autouse=True)
def network() -> Iterator[_Network]:
    _NETWORK.connects.clear()
    _NETWORK.resolves.clear()
    _NETWORK.watching = True
    yield _NETWORK
    _NETWORK.watching = False


# --- a small real server -----------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        self.server.seen.append((parts.path, self.headers.get("Host", "")))
        query = parse_qs(parts.query)
        if parts.path == "/hello":
            self._send(200, "text/plain; charset=utf-8", "hello from loopback ✓".encode())
        elif parts.path == "/json":
            self._send(200, "application/json", b'{"ok": true}')
        elif parts.path == "/latin1":
            self._send(200, "text/plain; charset=iso-8859-1", "café".encode("latin-1"))
        elif parts.path == "/missing":
            self._send(404, "text/html", b"<h1>not here</h1>")
        elif parts.path == "/image":
            self._send(200, "image/png", b"\x89PNG\r\n\x1a\n")
        elif parts.path == "/exact":
            self._send(200, "text/plain", b"e" * MAX_BYTES)
        elif parts.path == "/big":
            self._send(200, "text/plain", b"b" * (MAX_BYTES * 5))
        elif parts.path == "/endless":
            self._endless()
        elif parts.path == "/redirect":
            self._redirect(query["to"][0])
        elif parts.path == "/loop":
            self._redirect("/loop")
        elif parts.path == "/slow":
            time.sleep(3)
            self._send(200, "text/plain", b"late")
        else:
            self._send(404, "text/plain", b"no route")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _endless(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()  # no length: the body ends when the connection does
        chunk = b"x" * 65536
        try:
            while self.server.endless_sent < ENDLESS_CAP:
                self.wfile.write(chunk)
                self.server.endless_sent += len(chunk)
        except OSError:  # the client hung up, as it should
            pass
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # /slow may still sleep when the test ends

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, str]] = []
        self.endless_sent = 0

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    running = _Server()
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


@pytest.fixture(autouse=True)
def fresh_log(server: _Server) -> None:
    server.seen.clear()
    server.endless_sent = 0


def _resources(**changes: Any) -> Resources:
    # http_get touches neither the database nor the knowledge base.
    base = Resources(
        sessions=async_sessionmaker(),
        retrieval=None,
        http_allow_hosts=frozenset({"127.0.0.1", "localhost"}),
        http_allow_private=True,
        http_timeout_s=5,
        http_max_bytes=MAX_BYTES,
    )
    return replace(base, **changes)


async def _get(url: str, resources: Resources) -> ToolOutcome:
    call = ToolCallInput(call_id="c1", arguments={"url": url}, idempotency_key="run/1/0")
    return await http_get.run(call, ToolContext("run/1/0", "run", resources))


def _ok(outcome: ToolOutcome) -> dict[str, Any]:
    assert outcome.ok, outcome.error
    assert isinstance(outcome.result, dict)
    return outcome.result


def _refused(outcome: ToolOutcome, reason: str) -> None:
    assert not outcome.ok
    assert outcome.error is not None and reason in outcome.error, outcome.error


# --- allowed -------------------------------------------------------------------------------


async def test_fetches_text(server: _Server) -> None:
    url = f"http://127.0.0.1:{server.port}/hello"
    result = _ok(await _get(url, _resources()))
    assert result == {
        "url": url,
        "status": 200,
        "content_type": "text/plain; charset=utf-8",
        "text": "hello from loopback ✓",
        "truncated": False,
    }
    assert server.seen == [("/hello", f"127.0.0.1:{server.port}")]


async def test_connects_to_the_checked_address_and_keeps_the_host_name(
    server: _Server, network: _Network
) -> None:
    result = _ok(await _get(f"http://LocalHost:{server.port}/hello", _resources()))
    assert result["text"] == "hello from loopback ✓"
    # The server saw the name, but the name was resolved once, for the check: the socket
    # went to a checked address, so a second (rebound) answer has nowhere to go.
    assert server.seen == [("/hello", f"localhost:{server.port}")]
    assert [name for name in network.resolves if name.lower() == "localhost"] == ["localhost"]
    assert network.connects and set(network.connects) <= {"127.0.0.1", "::1"}


async def test_returns_error_statuses_and_decodes_charsets(server: _Server) -> None:
    missing = _ok(await _get(f"http://127.0.0.1:{server.port}/missing", _resources()))
    assert (missing["status"], missing["text"]) == (404, "<h1>not here</h1>")
    latin = _ok(await _get(f"http://127.0.0.1:{server.port}/latin1", _resources()))
    assert latin["text"] == "café"
    data = _ok(await _get(f"http://127.0.0.1:{server.port}/json", _resources()))
    assert data["text"] == '{"ok": true}'


async def test_refuses_binary_content(server: _Server) -> None:
    _refused(await _get(f"http://127.0.0.1:{server.port}/image", _resources()), "'image/png'")


async def test_truncates_at_the_size_limit(server: _Server) -> None:
    big = _ok(await _get(f"http://127.0.0.1:{server.port}/big", _resources()))
    assert (big["text"], big["truncated"]) == ("b" * MAX_BYTES, True)
    exact = _ok(await _get(f"http://127.0.0.1:{server.port}/exact", _resources()))
    assert (exact["text"], exact["truncated"]) == ("e" * MAX_BYTES, False)


async def test_stops_reading_an_endless_body(server: _Server) -> None:
    started = time.monotonic()
    result = _ok(await _get(f"http://127.0.0.1:{server.port}/endless", _resources()))
    assert (len(result["text"]), result["truncated"]) == (MAX_BYTES, True)
    assert time.monotonic() - started < 2
    # The client hung up: the server could not push its 50 MB (socket buffers hold some).
    deadline = time.monotonic() + 2
    while server.endless_sent < ENDLESS_CAP and time.monotonic() < deadline:
        last = server.endless_sent
        time.sleep(0.1)
        if server.endless_sent == last:
            break
    assert server.endless_sent < ENDLESS_CAP


async def test_gives_up_after_the_time_limit(server: _Server) -> None:
    started = time.monotonic()
    outcome = await _get(f"http://127.0.0.1:{server.port}/slow", _resources(http_timeout_s=0.5))
    _refused(outcome, "did not answer within 0.5 s")
    assert time.monotonic() - started < 2


async def test_follows_redirects_and_reports_the_final_url(server: _Server) -> None:
    result = _ok(await _get(f"http://127.0.0.1:{server.port}/redirect?to=/hello", _resources()))
    assert result["url"] == f"http://127.0.0.1:{server.port}/hello"
    assert result["text"] == "hello from loopback ✓"
    assert [path for path, _ in server.seen] == ["/redirect", "/hello"]


async def test_follows_at_most_three_redirects(server: _Server) -> None:
    outcome = await _get(f"http://127.0.0.1:{server.port}/loop", _resources())
    _refused(outcome, "redirects more than 3 times")
    assert [path for path, _ in server.seen] == ["/loop"] * 4


# --- refused -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("[::1]", "loopback"),
        ("169.254.169.254", "link-local"),
        ("[::ffff:169.254.169.254]", "link-local"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "non-public"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
    ],
)
async def test_refuses_internal_addresses_before_connecting(
    server: _Server, network: _Network, host: str, kind: str
) -> None:
    allowed = frozenset({host.strip("[]")})
    resources = _resources(http_allow_hosts=allowed, http_allow_private=False)
    outcome = await _get(f"http://{host}:{server.port}/hello", resources)
    _refused(outcome, f"({kind})")
    assert network.connects == []
    assert server.seen == []


async def test_refuses_hosts_off_the_allow_list_before_resolving(network: _Network) -> None:
    resources = _resources(http_allow_hosts=frozenset({"docs.example.org"}))
    outcome = await _get("https://metadata.google.internal/computeMetadata/v1/", resources)
    _refused(outcome, "host 'metadata.google.internal' is not allowed")
    assert "allowed hosts: docs.example.org" in (outcome.error or "")
    assert (network.resolves, network.connects) == ([], [])


async def test_with_no_allowed_host_everything_is_refused(network: _Network) -> None:
    outcome = await _get("https://example.com/", _resources(http_allow_hosts=frozenset()))
    _refused(outcome, "allowed hosts: none are configured")
    assert (network.resolves, network.connects) == ([], [])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://127.0.0.1/", "only http and https"),
        ("http://user:secret@127.0.0.1/", "user name or password"),
        ("http://", "names no host"),
    ],
)
async def test_refuses_other_urls(url: str, reason: str, network: _Network) -> None:
    _refused(await _get(url, _resources()), reason)
    assert network.connects == []


async def test_refuses_a_redirect_to_an_internal_address(
    server: _Server, network: _Network
) -> None:
    # Private addresses are refused, except the test server's own (an allowed network).
    resources = _resources(
        http_allow_hosts=frozenset({"127.0.0.1", "169.254.169.254", "10.0.0.1"}),
        http_allow_private=False,
        http_allow_networks=frozenset({ipaddress.ip_network("127.0.0.1/32")}),
    )
    for target, kind in [
        ("http://169.254.169.254/latest/meta-data/", "(link-local)"),
        ("http://10.0.0.1/admin", "(private)"),
        (f"http://localhost:{server.port}/hello", "not allowed"),  # a name off the list
    ]:
        outcome = await _get(f"http://127.0.0.1:{server.port}/redirect?to={target}", resources)
        _refused(outcome, kind)
    assert [path for path, _ in server.seen] == ["/redirect"] * 3
    assert set(network.connects) == {"127.0.0.1"}


async def test_allowed_networks_do_not_open_other_private_addresses(server: _Server) -> None:
    resources = _resources(
        http_allow_private=False,
        http_allow_networks=frozenset({ipaddress.ip_network("127.0.0.0/8")}),
        http_allow_hosts=frozenset({"127.0.0.1", "10.0.0.1"}),
    )
    result = _ok(await _get(f"http://127.0.0.1:{server.port}/hello", resources))
    assert result["status"] == 200
    _refused(await _get("http://10.0.0.1/", resources), "resolves to 10.0.0.1 (private)")


def test_the_audit_hook_keeps_tests_off_the_network() -> None:
    # The hook's refusal is what keeps this suite on loopback: prove it bites.
    with pytest.raises(PermissionError, match="test isolation"), socket.socket() as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, and never tried
