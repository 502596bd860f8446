"""Loopback ports: which are taken, and one that is free."""

import socket

__all__ = ["free_port", "port_in_use"]


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
