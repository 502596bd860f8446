"""`WireServer`: a fake OpenAI and Anthropic endpoint on a loopback port, for tests.

The server binds its socket itself (port 0 picks a free one, with no race) and hands it
to uvicorn, which runs on a daemon thread with its own event loop. That thread is why
the async form works: an async SDK client on the test's loop talks to a server that
never waits on that loop.
"""

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from keel.errors import KeelRunError, KeelUserError
from keel.testing.app import WireApp
from keel.testing.recording import ProtocolName, WireRequest
from keel.testing.replies import Reply
from keel.testing.script import Responder, Script, echo

__all__ = ["WireServer"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


class WireServer:
    """Speaks the OpenAI chat and embeddings protocols and the Anthropic messages protocol.

    Use it as `with WireServer() as server:` or `async with WireServer() as server:`,
    point the SDKs at `openai_base_url` and `anthropic_base_url`, script replies with
    `push`, and read what reached the "provider" in `requests`.

    Args:
        host: The address to bind; loopback by default.
        port: The port to bind; 0 picks a free one.
        responder: Answers requests no queued reply matches; `echo` by default.
        verbose: Configure logging and log each request (for the CLI); by default the
            server leaves logging alone, as a library must.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        responder: Responder = echo,
        verbose: bool = False,
    ) -> None:
        self.script = Script(responder)
        self._verbose = verbose
        self._app = WireApp(self.script)
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if not self._port:
            raise KeelUserError("the wire server has no port until it starts")
        return self._port

    @property
    def url(self) -> str:
        """`http://host:port`."""
        return f"http://{self._host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """`base_url` for `openai.OpenAI`: the URL with `/v1`."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """`base_url` for `anthropic.Anthropic`: the bare URL."""
        return self.url

    @property
    def requests(self) -> list[WireRequest]:
        """Every request received so far, oldest first, secrets masked."""
        return self._app.requests

    def push(
        self, *replies: Reply, protocol: ProtocolName | None = None, model: str | None = None
    ) -> None:
        """Queue `replies` for the next requests of `protocol` naming `model` (None: any)."""
        self.script.push(*replies, protocol=protocol, model=model)

    def reset(self) -> None:
        """Forget recorded requests and queued replies; restore the first responder."""
        self._app.reset()

    def start(self) -> None:
        """Serve on a background thread; return once the port accepts connections."""
        if self._thread is not None:
            raise KeelUserError("the wire server is already running")
        listener = self._bind()
        server = uvicorn.Server(self._config())
        thread = threading.Thread(
            target=server.run, args=([listener],), name="keel-wire-server", daemon=True
        )
        self._server, self._thread, self._listener = server, thread, listener
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise KeelRunError(f"the wire server did not start on {self._host}:{self._port}")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving and wait for the thread; requests still running get a second."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join()
        if self._listener is not None:
            # uvicorn closes it on a clean shutdown, but not if start-up failed.
            self._listener.close()
        self._server = self._thread = self._listener = None

    def _bind(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A restarted CLI server can take its port back from connections in TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # asyncio turns Nagle off only for sockets made with proto IPPROTO_TCP; uvicorn writes
        # headers and body apart, so without this every kept-alive request after the first
        # waits ~40 ms for the client's delayed ACK. Accepted sockets inherit the option.
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            listener.bind((self._host, self._port))
        except OSError as exc:
            listener.close()
            raise KeelUserError(f"cannot listen on {self._host}:{self._port}: {exc}") from exc
        self._port = listener.getsockname()[1]
        return listener

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self._app,
            lifespan="off",
            ws="none",
            log_config=LOGGING_CONFIG if self._verbose else None,
            log_level="info" if self._verbose else None,
            timeout_graceful_shutdown=1,
        )

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
