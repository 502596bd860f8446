"""Which client a request counts against (`api.throttle.client_address`)."""

import pytest
from starlette.requests import Request

from api.throttle import client_address


@pytest.mark.parametrize(
    ("host", "client"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("127.0.0.1", "127.0.0.1"),  # loopback is a client like any other
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),  # one /64, one client
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("", "unknown"),
    ],
)
def test_an_ipv6_client_is_its_slash_64(host: str, client: str) -> None:
    request = Request({"type": "http", "headers": [], "client": (host, 4321) if host else None})
    assert client_address(request) == client
