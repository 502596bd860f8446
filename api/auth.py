"""Who is calling: API keys resolved to a `Principal`, roles, open mode, rate limits.

A key belongs to a principal (a person or a service, `keel.keys`): self-approval and review
claims compare principals, so no key of the submitter's principal decides its run.

A request under `/v1/` carries its key as `Authorization: Bearer <key>` or `X-API-Key`.
A missing, unknown or revoked key gets 401 (with `WWW-Authenticate`); a key whose role may
not do what the route does gets 403; a key over its rate gets 429 with `Retry-After`.

Open mode (`KEEL_AUTH=auto`, the default): while no API key was ever created and the API
binds a loopback address, a request without a key acts as an admin, and each successful
answer says so in `X-Keel-Auth: open`. The first key created ends open mode at once, in
every process (each keyless request looks for a key). On any other address the API refuses
to start open. An open API is reachable from this machine's browser too, so it refuses
(403 `open-mode-refused`) what a web page could send through it: a `Host` that is not a
loopback name or address (a DNS-rebinding page is same-origin with the API under its own
name), and a write (any method but GET, HEAD and OPTIONS) that the browser marks as coming
from another site (`Sec-Fetch-Site` other than `same-origin` or `none`) or whose `Origin`
is not the API's own. Clients outside a browser (the CLI, curl, SDKs) send neither header.

The codec server (`/codec`, `api/routes/codec.py`) authenticates the same way, and an open
API also takes its writes from the Temporal UI's origins (`KEEL_CODEC_ORIGINS`), the one page
that calls it.

Concurrent requests asking the database the same question (is there a key? which key is
this?) share one query: a request that finds the query in flight takes its answer, which is
at most that query's duration older than the request.

Rate limits, each answered with 429 and `Retry-After`: a token bucket per principal (all of
its keys together) in each API process (`KEEL_API_RATE_PER_S`, burst `KEEL_API_RATE_BURST`:
with N API processes a principal may reach N times the rate); the same per client address
for keyless requests in open mode (`KEEL_API_ADDRESS_RATE_*`); and a budget of failed
authentications per client address (`KEEL_API_FAILED_AUTH_*`), counted in the database and
so shared by every API process on it (`api.throttle`). An address over that budget is
refused before its key is looked up.
"""

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import timedelta
from functools import partial
from typing import Annotated, Any, Generic, NoReturn, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from api.throttle import FailureBudget, client_address
from keel.db import Database, create_engine, init_db
from keel.errors import (
    Forbidden,
    KeelUserError,
    OpenModeRefused,
    RateLimitExceeded,
    SelfApproval,
    Unauthorized,
)
from keel.keys import Role, any_key_exists, is_loopback, resolve_key
from keel.run_client import RunClient
from keel.search_attributes import KEEL_SUBMITTER
from keel.settings import Settings
from keel.tables import ApiKeyRow

__all__ = [
    "CODEC_COOKIE",
    "OPEN_PRINCIPAL",
    "AuthState",
    "Principal",
    "PrincipalDep",
    "TokenBucket",
    "authenticate",
    "check_auth_mode",
    "refuse_own_run",
    "require",
    "require_from_ui",
    "v1_guard",
]

log = logging.getLogger("keel.api")

_T = TypeVar("_T")

_bearer = HTTPBearer(auto_error=False, description="An API key: `keel keys create`.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


class Principal(BaseModel, frozen=True):
    """The caller: whose key it is (`id`, the principal's id), and the key's id, name and role.

    Who submits, claims and decides is `id`; `key_id` says which of the principal's keys
    acted. Both are None in open mode.
    """

    id: str | None
    key_id: str | None = None
    name: str
    role: Role


OPEN_PRINCIPAL = Principal(id=None, name="open", role="admin")
"""Every keyless caller while the API runs open."""


class TokenBucket:
    """Token buckets by name: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """Spend one token of `key`: 0 when there was one, else seconds until there is."""
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0


class _Shared(Generic[_T]):
    """Concurrent asks of one question share the query in flight."""

    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Future[_T]] = {}

    async def ask(self, question: str, query: Callable[[], Awaitable[_T]]) -> _T:
        flight = self._flights.get(question)
        if flight is None:
            flight = asyncio.ensure_future(query())
            self._flights[question] = flight
            flight.add_done_callback(lambda _: self._flights.pop(question, None))
        # One asker giving up (a client gone) does not cancel the others' query.
        return await asyncio.shield(flight)


class AuthState:
    """One API process's view of authentication: whether keys are required, rate buckets."""

    def __init__(self, settings: Settings) -> None:
        # Keys are never deleted, so once required, always required.
        self.required = settings.auth == "required" or not is_loopback(settings.api_host)
        self.buckets = TokenBucket(settings.api_rate_per_s, settings.api_rate_burst)
        self.addresses = TokenBucket(
            settings.api_address_rate_per_s, settings.api_address_rate_burst
        )
        self.failures = FailureBudget(
            settings.api_failed_auth_limit, settings.api_failed_auth_window_s
        )
        self.any_key: _Shared[bool] = _Shared()
        self.keys: _Shared[ApiKeyRow | None] = _Shared()


async def _is_open(request: Request) -> bool:
    state: AuthState = request.app.state.auth
    if state.required:
        return False
    database: Database = request.app.state.db
    state.required = await state.any_key.ask("", lambda: database.run(any_key_exists))
    return not state.required


async def _resolve(request: Request, token: str) -> ApiKeyRow | None:
    database: Database = request.app.state.db
    query = partial(resolve_key, key=token)
    return await request.app.state.auth.keys.ask(token, lambda: database.run(query))


async def authenticate(
    request: Request,
    response: Response,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The request's principal; 401 without a valid key (unless open), 429 over a rate."""
    return await _authenticate(request, response, bearer, api_key, trusted_origins=())


async def _authenticate(
    request: Request,
    response: Response,
    bearer: HTTPAuthorizationCredentials | None,
    api_key: str | None,
    trusted_origins: Collection[str],
) -> Principal:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    state: AuthState = request.app.state.auth
    address = client_address(request)
    _refuse_over_rate(state.failures.wait(address), _too_many_failures(state, address))
    token = bearer.credentials if bearer is not None else api_key
    if token:
        row = await _resolve(request, token)
        if row is None:
            await _failed(request, address, "the API key is unknown or revoked")
        state.required = True
        # The role column is a plain string: the model checks it is a `Role`.
        principal = Principal.model_validate(
            {"id": row.principal, "key_id": row.id, "name": row.name, "role": row.role}
        )
        _refuse_over_rate(
            state.buckets.take(principal.id or row.id),
            f"principal {principal.id} (key {row.id}) is over its rate of {state.buckets.rate:g}/s",
        )
    elif await _is_open(request):
        _refuse_over_rate(
            state.addresses.take(address),
            f"{address} is over the keyless rate of {state.addresses.rate:g}/s",
        )
        _refuse_browser_reach(request, trusted_origins)
        principal = OPEN_PRINCIPAL
        response.headers["X-Keel-Auth"] = "open"
    else:
        await _failed(
            request, address, "an API key is required: send 'Authorization: Bearer <key>'"
        )
    request.state.principal = principal
    return principal


def _refuse_over_rate(wait: float, why: str) -> None:
    """429 when there is a `wait` (seconds) before the next request may pass."""
    if wait > 0:
        raise RateLimitExceeded(why, retry_after=timedelta(seconds=max(1, math.ceil(wait))))


async def _failed(request: Request, address: str, why: str) -> NoReturn:
    """401, or 429 once the failure puts `address` over its budget of failures."""
    state: AuthState = request.app.state.auth
    wait = await state.failures.fail(request.app.state.db, address)
    _refuse_over_rate(wait, _too_many_failures(state, address))
    raise Unauthorized(why)


def _too_many_failures(state: AuthState, address: str) -> str:
    limit, window_s = state.failures.limit, state.failures.window_s
    return f"{address} failed to authenticate over {limit} times in {window_s:g} s"


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME_SITE = frozenset({"same-origin", "none"})


def _refuse_browser_reach(request: Request, trusted_origins: Collection[str]) -> None:
    """403 for an open-mode request a web page could have made, unless from `trusted_origins`."""
    host = request.headers.get("host", "")
    if not is_loopback(urlsplit(f"//{host}").hostname or ""):
        raise OpenModeRefused(
            f"the API is open (no API key exists yet) and answers only to a loopback host, "
            f"not {host!r}: use http://127.0.0.1 or http://localhost, or create a key"
        )
    origin = request.headers.get("origin")
    if request.method in _SAFE_METHODS or (origin is not None and origin in trusted_origins):
        return
    site = request.headers.get("sec-fetch-site")
    if (site is not None and site not in _SAME_SITE) or (
        origin is not None and urlsplit(origin).netloc != host
    ):
        raise OpenModeRefused(
            f"the API is open (no API key exists yet) and takes no write from another site "
            f"(Origin {origin!r}, Sec-Fetch-Site {site!r}): send it from this machine, or "
            "create a key"
        )


PrincipalDep = Annotated[Principal, Depends(authenticate)]
"""The request's principal (any role)."""


def require(*roles: Role) -> Any:
    """A dependency: the principal, when its role is one of `roles` (admins always); else 403."""

    async def _allowed(principal: PrincipalDep) -> Principal:
        return _in_role(principal, roles)

    return Depends(_allowed)


CODEC_COOKIE = "keel_codec"
"""The cookie that carries an operator's key to the codec server from the Temporal UI's page."""


def require_from_ui(*roles: Role) -> Any:
    """`require`, for the routes the Temporal UI calls from its own page (the codec server).

    An open API takes writes from the UI's origins (`Settings.codec_cors_origins`) too: those
    pages are the operator's own tool, and the CORS policy lets no other page read an answer.
    The UI sends no API key of its own, so a request without one may carry it in the
    `CODEC_COOKIE` cookie instead (set by `POST /codec/session`).
    """

    async def _allowed(
        request: Request,
        response: Response,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        api_key: Annotated[str | None, Depends(_api_key)],
    ) -> Principal:
        settings: Settings = request.app.state.settings
        origins = settings.codec_cors_origins
        key = api_key if bearer is not None or api_key else request.cookies.get(CODEC_COOKIE)
        principal = await _authenticate(request, response, bearer, key, origins)
        return _in_role(principal, roles)

    return Depends(_allowed)


def _in_role(principal: Principal, roles: Collection[Role]) -> Principal:
    allowed = {*roles, "admin"}
    if principal.role not in allowed:
        raise Forbidden(
            f"role {principal.role!r} may not do this; it takes: {', '.join(sorted(allowed))}",
        )
    return principal


async def refuse_own_run(runs: RunClient, run_id: str, principal: Principal) -> None:
    """403 `self-approval` when `principal` submitted the run, through any of its keys.

    A run started before principals names its submitting key's id, which is that key's
    principal's id (`keel.keys`), so the comparison holds for those runs too.
    """
    if principal.id is None:
        return
    description = await runs.describe(run_id)
    if description is None:
        return  # no run, no submitter: the decision itself is refused as not pending
    if description.typed_search_attributes.get(KEEL_SUBMITTER) == principal.id:
        raise SelfApproval(
            f"{principal.id} submitted run {run_id}, and key {principal.key_id} is theirs: "
            "someone else must decide its reviews",
        )


async def v1_guard(
    request: Request,
    response: Response,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> None:
    """App-wide dependency: every route under `/v1/` authenticates, whatever it declares."""
    if request.url.path == "/v1" or request.url.path.startswith("/v1/"):
        await authenticate(request, response, bearer, api_key)


async def check_auth_mode(settings: Settings) -> bool:
    """Before serving: whether the API will run open; refuses to run open off loopback."""
    if settings.auth == "required":
        return False
    database = Database(create_engine(settings.sql_url))
    try:
        await init_db(database.engine)
        keys = await database.run(any_key_exists)
    finally:
        await database.dispose()
    if keys:
        return False
    if not is_loopback(settings.api_host):
        raise KeelUserError(
            f"refusing to serve the API open on {settings.api_host}: no API key exists. Create "
            "one first (`keel keys create --role admin --name you`), or set KEEL_AUTH=required"
        )
    log.warning(
        "the API is OPEN: no API key exists, so every caller on %s is an admin. Fine for a "
        "first try on this machine; `keel keys create --role admin --name you` ends it",
        settings.api_host,
    )
    return True
