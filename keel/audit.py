"""The audit trail: an append-only log per run, each entry chained to the one before.

An entry is `seq, run_id, kind, actor, data, at, prev_hash`; its `hash` is the SHA-256 of
those fields as canonical JSON (sorted keys, no spaces, UTF-8). The first entry of a run
chains to `GENESIS`. Changing, inserting or deleting an entry in the middle breaks every
later link, and `verify_trail` names the first one. (Dropping the newest entries leaves a
valid, shorter chain: the chain proves the order and content of what it holds.)

Writes are idempotent on a key (workflow run id + activity id, or the run id + an event):
an activity retried after writing finds its entry. Parallel writers on one run serialise on
the unique `(run_id, seq)`: the loser of a race reads the new head and tries again.
"""

import asyncio
import hashlib
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from keel.schemas.audit import AUDIT_APPEND, AuditAppend, AuditEntry
from keel.tables import AuditRow

__all__ = [
    "GENESIS",
    "AuditBreak",
    "AuditLog",
    "append_audit",
    "entry_hash",
    "read_trail",
    "verify_trail",
    "verify_trails",
]

GENESIS = "0" * 64
"""The `prev_hash` of a run's first entry."""

_ATTEMPTS = 50


def _timestamp(at: datetime) -> str:
    # SQLite hands back naive datetimes; every stored time is UTC.
    aware = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return aware.isoformat(timespec="microseconds")


def entry_hash(
    *,
    seq: int,
    run_id: str,
    kind: str,
    actor: str | None,
    data: dict[str, Any],
    at: datetime,
    prev_hash: str,
) -> str:
    """The SHA-256 of an entry's canonical JSON, `prev_hash` included."""
    canonical = json.dumps(
        {
            "seq": seq,
            "run_id": run_id,
            "kind": kind,
            "actor": actor,
            "data": data,
            "at": _timestamp(at),
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def append_audit(
    session: AsyncSession,
    run_id: str,
    key: str,
    kind: str,
    actor: str | None,
    data: dict[str, Any],
) -> AuditRow:
    """Append an entry to `run_id`'s trail and commit, unless an entry with `key` exists.

    Commits on its own and rolls back to retry a lost race, so `session` must carry no
    other pending change. Plain statements, not the ORM's unit of work: an API request
    and every model call write one.
    """
    if session.new or session.dirty or session.deleted:
        raise ValueError("append_audit needs a session without pending changes")
    for attempt in range(_ATTEMPTS):
        head = (
            await session.execute(
                select(AuditRow.seq, AuditRow.hash)
                .where(AuditRow.run_id == run_id)
                .order_by(col(AuditRow.seq).desc())
                .limit(1)
            )
        ).first()
        seq, prev_hash = (head.seq + 1, head.hash) if head is not None else (1, GENESIS)
        fields: dict[str, Any] = {
            "seq": seq,
            "run_id": run_id,
            "kind": kind,
            "actor": actor,
            "data": data,
            "at": datetime.now(UTC),
            "prev_hash": prev_hash,
        }
        row = AuditRow(key=key, hash=entry_hash(**fields), **fields)
        try:
            values = row.model_dump(exclude={"id"})
            await session.execute(insert(AuditRow.__table__).values(**values))  # type: ignore[arg-type]
            await session.commit()
        except IntegrityError:
            # The entry was written before (a retried activity), or another writer took
            # this seq first: then read the head again.
            await session.rollback()
            found = (await session.exec(select(AuditRow).where(AuditRow.key == key))).first()
            if found is not None:
                return found
            await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
            continue
        return row
    raise RuntimeError(f"could not append to the audit trail of {run_id} ({_ATTEMPTS} races lost)")


async def read_trail(session: AsyncSession, run_id: str) -> list[AuditEntry]:
    """A run's entries in chain order."""
    rows = await session.exec(
        select(AuditRow).where(AuditRow.run_id == run_id).order_by(col(AuditRow.seq))
    )
    return [_entry(row) for row in rows]


@dataclass(frozen=True)
class AuditBreak:
    """The first broken link of a run's chain."""

    run_id: str
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"run {self.run_id}, entry {self.seq}: {self.reason}"


def verify_trail(entries: list[AuditEntry]) -> AuditBreak | None:
    """Recompute a run's chain; the first link that does not hold, or None."""
    prev_hash = GENESIS
    for expected_seq, entry in enumerate(entries, start=1):
        if entry.seq != expected_seq:
            return AuditBreak(entry.run_id, entry.seq, f"expected entry {expected_seq} here")
        if entry.prev_hash != prev_hash:
            return AuditBreak(entry.run_id, entry.seq, "prev_hash is not the previous entry's hash")
        fields = entry.model_dump(exclude={"hash"})
        if entry_hash(**fields) != entry.hash:
            return AuditBreak(entry.run_id, entry.seq, "content does not match its hash")
        prev_hash = entry.hash
    return None


async def verify_trails(
    session: AsyncSession, run_id: str | None = None
) -> tuple[int, int, list[AuditBreak]]:
    """Verify one run's chain, or every run's: (runs, entries, first break of each bad run)."""
    if run_id is not None:
        run_ids = [run_id]
    else:
        run_ids = list(
            await session.exec(select(AuditRow.run_id).distinct().order_by(col(AuditRow.run_id)))
        )
    entries, breaks = 0, []
    for run in run_ids:
        trail = await read_trail(session, run)
        entries += len(trail)
        broken = verify_trail(trail)
        if broken is not None:
            breaks.append(broken)
    return len(run_ids), entries, breaks


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        run_id=row.run_id,
        kind=row.kind,
        actor=row.actor,
        data=row.data,
        at=row.at.replace(tzinfo=UTC) if row.at.tzinfo is None else row.at,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditLog:
    """Appends to audit trails from a worker; also the `audit.append` activity."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def append(
        self, run_id: str, key: str, kind: str, actor: str | None, data: dict[str, Any]
    ) -> None:
        """Append an entry with a session of its own (idempotent on `key`)."""
        async with self._sessions() as session:
            await append_audit(session, run_id, key, kind, actor, data)

    @activity.defn(name=AUDIT_APPEND)
    async def append_activity(self, entry: AuditAppend) -> None:
        """Append an entry a workflow asks for (idempotent on its key)."""
        await self.append(entry.run_id, entry.key, entry.kind, entry.actor, entry.data)
