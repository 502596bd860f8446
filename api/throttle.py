"""Who a request comes from, and how many failed authentications it may make.

A client is its address as the server sees it (behind a reverse proxy: the proxy's, unless
uvicorn trusts the proxy's `X-Forwarded-For`; it trusts 127.0.0.1 and ::1 by default,
`FORWARDED_ALLOW_IPS` otherwise). An IPv6 client is its /64, the block one host usually
holds. Loopback is a client like any other.

Failed authentications (401) count against the address in the database, so every API
process on it shares the budget (`keel.auth_failures`). Once over, the address gets 429
until its window ends: at once from a process that saw it go over, and from any other at
the first failure it counts there.
"""

import ipaddress
import time
from functools import partial

from fastapi import Request

from keel.auth_failures import count_failure
from keel.db import Database

__all__ = ["FailureBudget", "client_address"]


def client_address(request: Request) -> str:
    """The client a request counts against: its IPv4 address, or its IPv6 /64."""
    host = request.client.host if request.client is not None else ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"  # not an IP address (a Unix socket)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class FailureBudget:
    """`limit` failed authentications per client address in each window of `window_s`."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._over: dict[str, float] = {}
        """Addresses this process saw go over, and when their window ends."""
        self._pruned = 0.0

    def wait(self, address: str) -> float:
        """Seconds until `address` may authenticate again (0: it may now, as far as known)."""
        left = self._over.get(address, 0.0) - time.time()
        if left > 0:
            return left
        self._over.pop(address, None)
        return 0.0

    async def fail(self, database: Database, address: str) -> float:
        """Count one failure of `address`: seconds it must wait when that put it over, else 0."""
        now = time.time()
        prune = now - self._pruned >= self.window_s
        if prune:
            self._pruned = now
            self._over = {a: ends for a, ends in self._over.items() if ends > now}
        count = partial(
            count_failure, address=address, now=now, window_s=self.window_s, prune=prune
        )
        window = await database.run(count)
        if window.failures <= self.limit:
            return 0.0
        self._over[address] = window.ends
        return max(window.ends - now, 0.0)
