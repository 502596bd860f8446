"""Ports: which are taken, one that is free, and whether an address answers."""

import asyncio
import socket

__all__ = ["answers", "free_port", "port_in_use"]


async def answers(address: str, timeout: float = 5.0) -> bool:
    """Whether something accepts a TCP connection at `address` (``host:port``)."""
    host, _, port = address.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]"), int(port)), timeout
        )
    except (OSError, ValueError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on `host:port`."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
