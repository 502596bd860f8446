"""API keys: created with a role, shown once, stored as the SHA-256 of their secret.

A key reads `keel_<id>_<secret>`: `id` (12 hex digits) finds the row, `secret` (32 random
bytes, URL-safe base64) proves possession. The table keeps `sha256("<id>:<secret>")`; a
key has 256 bits of entropy, so a fast hash is enough and a slow one would only cost every
request. Keys are revoked, never deleted, so "any key was ever created" only ever turns true.
"""

import hashlib
import hmac
import ipaddress
import secrets
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import Connection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.tables import ApiKeyRow

__all__ = [
    "ROLES",
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


def _digest(key_id: str, secret: str) -> str:
    return hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()


async def create_key(session: AsyncSession, role: Role, name: str) -> tuple[ApiKeyRow, str]:
    """Store a new key; returns its row and the key itself (the only time it exists in clear)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    row = ApiKeyRow(
        id=key_id,
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
    row = ApiKeyRow(**found)
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
