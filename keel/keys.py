"""API keys: created with a role for a principal, shown once, stored as the SHA-256 of their secret.

A key reads `keel_<id>_<secret>`: `id` (12 hex digits) finds the row, `secret` (32 random
bytes, URL-safe base64) proves possession. The table keeps `sha256("<id>:<secret>")`; a
key has 256 bits of entropy, so a fast hash is enough and a slow one would only cost every
request. Keys are revoked, never deleted, so "any key was ever created" only ever turns true.

Every key belongs to a principal: the person or service holding it, named by a principal id.
Who submitted a run, who claims a review and who decides it are principals, so one person's
keys are one person. A key created without a principal gets one of its own whose id is the
key's id; a key made before principals existed got the same at migration (`keel.db`). So a
run whose submitter is a key id (started before the change) names that key's principal, and
any later key created for that principal (`--principal <key id>`) is the same person.
"""

import hashlib
import hmac
import ipaddress
import re
import secrets
from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator
from sqlalchemy import Connection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.tables import ApiKeyRow

__all__ = [
    "ROLES",
    "PrincipalId",
    "Role",
    "any_key_exists",
    "create_key",
    "is_loopback",
    "list_keys",
    "resolve_key",
    "revoke_key",
]

Role = Literal["submitter", "reviewer", "operator", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

_PREFIX = "keel_"

_PRINCIPAL = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,63}")


def _principal_id(value: str) -> str:
    # Lower case only: "Ana" and "ana" must never be two people who approve each other's runs.
    if not _PRINCIPAL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a principal id: 1 to 64 characters, lower-case letters, digits "
            "and . _ @ + -, starting with a letter or a digit (e.g. 'ana', 'ci-bot', "
            "'ana@example.com')"
        )
    return value


PrincipalId = Annotated[str, AfterValidator(_principal_id)]
"""Who holds a key: e.g. `ana`, `billing-service`, `ana@example.com`."""


def _digest(key_id: str, secret: str) -> str:
    return hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()


async def create_key(
    session: AsyncSession, role: Role, name: str, principal: str | None = None
) -> tuple[ApiKeyRow, str]:
    """Store a new key; returns its row and the key itself (the only time it exists in clear).

    Args:
        session: Where to store it.
        role: What the key may do.
        name: A label for the key (e.g. "ana's laptop").
        principal: Whose key it is (a `PrincipalId`); None: a principal of its own, whose
            id is the key's id.

    Raises:
        ValueError: `role` is no role, or `principal` is no principal id.

    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    row = ApiKeyRow(
        id=key_id,
        principal=key_id if principal is None else _principal_id(principal),
        name=name,
        role=role,
        secret_sha256=_digest(key_id, secret),
        created_at=datetime.now(UTC),
    )
    session.add(row)
    await session.commit()
    return row, f"{_PREFIX}{key_id}_{secret}"


async def list_keys(session: AsyncSession) -> list[ApiKeyRow]:
    """Every key, revoked ones included, oldest first."""
    rows = await session.exec(select(ApiKeyRow).order_by(col(ApiKeyRow.created_at)))
    return list(rows)


async def revoke_key(session: AsyncSession, key_id: str) -> ApiKeyRow | None:
    """Revoke a key (idempotent); None when there is no such key."""
    row = await session.get(ApiKeyRow, key_id)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.add(row)
        await session.commit()
    return row


def resolve_key(conn: Connection, key: str) -> ApiKeyRow | None:
    """The live key that `key` is, or None (malformed, unknown, wrong secret or revoked).

    A unit of work for `keel.db.Database.run`: API requests look keys up this way.
    """
    key_id, _, secret = key.removeprefix(_PREFIX).partition("_")
    if not key.startswith(_PREFIX) or not key_id or not secret:
        return None
    found = conn.execute(select(ApiKeyRow).where(ApiKeyRow.id == key_id)).mappings().first()
    if found is None:
        return None
    # A key an older Keel wrote after the migration (both running during an upgrade) has no
    # principal yet: it is its own, as the migration would make it.
    row = ApiKeyRow(**{**found, "principal": found["principal"] or found["id"]})
    if row.revoked_at is not None:
        return None
    return row if hmac.compare_digest(row.secret_sha256, _digest(key_id, secret)) else None


def any_key_exists(conn: Connection) -> bool:
    """Whether a key was ever created (revoked keys count); a unit of work, as above."""
    return conn.execute(select(ApiKeyRow.id).limit(1)).first() is not None


def is_loopback(host: str) -> bool:
    """Whether `host` (an address the API binds) is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
