"""`http_get`: read a page from an allow-listed host, and never from an internal address.

The model picks the URL, so the URL is untrusted input, and the worker usually sits inside
a network with things worth stealing (the cloud metadata service at 169.254.169.254, admin
ports on loopback, the private subnet). Every hop, the first URL and each redirect (at
most `_MAX_REDIRECTS`, followed by hand, never by httpx), passes the same checks:

1. the scheme is http or https, and the URL carries no credentials;
2. the host is in `Resources.http_allow_hosts` (exact match, case-insensitive); a host
   that is not is refused before it is even resolved;
3. the host is resolved once, and *every* address it resolves to must be public: not
   loopback, link-local, private, shared, multicast, reserved or unspecified (IPv4 inside
   IPv6 is unwrapped first), unless `http_allow_private` is set or the address is in
   `http_allow_networks`;
4. the connection goes to an address that was checked: the request's URL names the IP,
   with the `Host` header and the TLS SNI (hence certificate verification) set to the
   host name. Nothing resolves the name a second time, so DNS rebinding (a name that
   answers a public address for the check and 127.0.0.1 for the connect) has no window.

Proxies from the environment are ignored (`trust_env=False`): a proxy resolves the name
itself, which would undo step 4. The body is streamed and cut at `http_max_bytes`; the
request asks for no compression so that the cut bounds memory too (a server that
compresses anyway is decoded one network chunk at a time). `http_timeout_s` bounds the
whole call, redirects included.
"""

import asyncio
import ipaddress
import socket
from datetime import timedelta

import httpx
from pydantic import BaseModel, Field
from temporalio.common import RetryPolicy

from tools.builtin.resources import Resources
from tools.registry import ToolContext, ToolError, tool

__all__ = ["HttpGetArgs", "HttpGetResult", "http_get"]

_MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_TEXT_TYPES = frozenset(
    {"application/json", "application/xml", "application/javascript", "application/x-yaml"}
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class HttpGetArgs(BaseModel):
    """The page to read."""

    url: str = Field(
        min_length=1, max_length=2000, description="An http(s) URL on an allowed host."
    )


class HttpGetResult(BaseModel):
    """What the server answered (after redirects)."""

    url: str = Field(description="The URL that answered, after redirects.")
    status: int
    content_type: str
    text: str
    truncated: bool = Field(description="True when the body was cut at the size limit.")


@tool(
    idempotent=True,
    timeout=timedelta(seconds=15),
    retry=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1)),
)
async def http_get(args: HttpGetArgs, context: ToolContext) -> HttpGetResult:
    """Fetch a web page or API response by HTTP GET and return its text.

    Only hosts the operator allowed can be fetched; the error names them. Redirects are
    followed (at most 3). Long bodies are cut and marked `truncated`. Only text responses
    (HTML, JSON, XML, plain text) are returned. A 404 or 500 is returned as its `status`,
    not as an error.
    """
    resources = Resources.of(context)
    url = _parse(args.url)
    limits = httpx.Limits(max_keepalive_connections=0)  # a TLS connection is bound to its SNI
    try:
        async with (
            asyncio.timeout(resources.http_timeout_s),
            httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                timeout=resources.http_timeout_s,
                limits=limits,
                headers={"Accept-Encoding": "identity"},
            ) as client,
        ):
            for _ in range(_MAX_REDIRECTS + 1):
                addresses = await _checked_addresses(url, resources)
                answer = await _get(client, url, addresses, resources.http_max_bytes)
                if isinstance(answer, HttpGetResult):
                    return answer
                url = answer
    except (TimeoutError, httpx.TimeoutException) as err:  # the call's limit, or one read's
        raise ToolError(f"{url} did not answer within {resources.http_timeout_s:g} s") from err
    except httpx.HTTPError as err:
        # A site that is down or slow is news for the model (try another source), not a
        # fault of the run; retrying the step would only multiply the wait.
        raise ToolError(f"could not fetch {url}: {str(err) or type(err).__name__}") from err
    raise ToolError(f"{args.url} redirects more than {_MAX_REDIRECTS} times")


def _parse(text: str) -> httpx.URL:
    try:
        url = httpx.URL(text.strip())
    except httpx.InvalidURL as err:
        raise ToolError(f"not a valid URL: {err}") from err
    return url


async def _checked_addresses(url: httpx.URL, resources: Resources) -> list[str]:
    """Steps 1-3: the addresses `url`'s host resolves to, all permitted, in resolver order."""
    if url.scheme not in ("http", "https"):
        raise ToolError(f"only http and https URLs can be fetched, not {url.scheme or 'this'!r}")
    if url.userinfo:
        raise ToolError("URLs with a user name or password are not allowed")
    host = url.raw_host.decode("ascii").rstrip(".")
    if not host:
        raise ToolError(f"{url} names no host")
    if host not in resources.http_allow_hosts:
        allowed = ", ".join(sorted(resources.http_allow_hosts)) or "none are configured"
        raise ToolError(f"host {host!r} is not allowed; allowed hosts: {allowed}")
    port = url.port or (443 if url.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ToolError(f"cannot resolve {host!r}: {err.strerror}") from err
    # Zone ids ("fe80::1%eth0") are not part of the address.
    addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in found))
    for address in addresses:
        refused = _refusal(ipaddress.ip_address(address), resources)
        if refused:
            raise ToolError(
                f"{host!r} resolves to {address} ({refused}); "
                "http_get only reaches public addresses"
            )
    return addresses


def _refusal(address: _IPAddress, resources: Resources) -> str | None:
    """Why `address` may not be reached, or None when it may."""
    if resources.http_allow_private or any(address in n for n in resources.http_allow_networks):
        return None
    for candidate in (*_embedded_ipv4(address), address):  # the IPv4 inside names it best
        for kind, flagged in (
            ("loopback", candidate.is_loopback),
            ("link-local", candidate.is_link_local),
            ("multicast", candidate.is_multicast),
            ("unspecified", candidate.is_unspecified),
            ("reserved", candidate.is_reserved),
            ("private", candidate.is_private),
            ("non-public", not candidate.is_global),
        ):
            if flagged:
                return kind
    return None


def _embedded_ipv4(address: _IPAddress) -> list[ipaddress.IPv4Address]:
    # ::ffff:127.0.0.1, 2002:7f00:1::, 64:ff9b::7f00:1 all lead to an IPv4 address, and
    # older Pythons judge them by their IPv6 form.
    if isinstance(address, ipaddress.IPv4Address):
        return []
    inner = [address.ipv4_mapped, address.sixtofour]
    if address in _NAT64:
        inner.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [a for a in inner if a is not None]


async def _get(
    client: httpx.AsyncClient, url: httpx.URL, addresses: list[str], max_bytes: int
) -> HttpGetResult | httpx.URL:
    """Step 4: GET `url` from the first checked address that accepts a connection.

    Returns:
        The result, or the URL a redirect points to.
    """
    host = url.raw_host.decode("ascii").rstrip(".")
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    failure: httpx.ConnectError | None = None
    for address in addresses:
        request = client.build_request(
            "GET",
            url.copy_with(host=address),
            headers={"Host": url.netloc.decode("ascii")},
            extensions=extensions,
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.ConnectError as err:
            failure = err
            continue
        try:
            return await _read(url, response, max_bytes)
        finally:
            await response.aclose()
    raise ToolError(f"could not connect to {host!r}: {failure}")


async def _read(
    url: httpx.URL, response: httpx.Response, max_bytes: int
) -> HttpGetResult | httpx.URL:
    location = response.headers.get("location")
    if response.status_code in _REDIRECT_STATUSES and location:
        try:
            return url.join(location)
        except httpx.InvalidURL as err:
            raise ToolError(f"{url} redirects to an invalid URL: {err}") from err
    content_type = response.headers.get("content-type", "")
    if not _is_text(content_type):
        raise ToolError(f"{url} is {content_type!r}, not text; http_get reads text only")
    body = bytearray()
    truncated = False
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            # Stop reading: the rest may be endless.
            truncated = True
            del body[max_bytes:]
            break
    return HttpGetResult(
        url=str(url),
        status=response.status_code,
        content_type=content_type,
        text=_decode(bytes(body), response.charset_encoding),
        truncated=truncated,
    )


def _is_text(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return (
        not mime
        or mime.startswith("text/")
        or mime in _TEXT_TYPES
        or mime.endswith(("+json", "+xml"))
    )


def _decode(body: bytes, charset: str | None) -> str:
    # A cut can split a multi-byte character: replace it rather than fail.
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")
