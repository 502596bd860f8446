"""The audit trail: an append-only log per run, each entry chained to the one before.

An entry is `seq, run_id, kind, actor, data, at, prev_hash`; its `hash` is the SHA-256 of
those fields as canonical JSON (sorted keys, no spaces, UTF-8). The first entry of a run
chains to `GENESIS`. Changing, inserting or deleting an entry in the middle breaks every
later link, and `verify_trail` names the first one. Dropping the newest entries leaves a
valid, shorter chain, and so does recomputing every hash of a rewritten run: the chain proves
the order and content of what it holds, and `keel.audit_anchor` checks it against the heads
recorded outside the database: in Temporal's history of the run as it ended, and in the
run's signed checkpoint (`keel.audit_checkpoint`).

Writes are idempotent on a key (workflow run id + activity id, or the run id + an event):
an activity retried after writing finds its entry. Parallel writers on one run serialise on
the unique `(run_id, seq)`: the loser of a race reads the new head and tries again.

A process appends through one `AuditLog`, which writes the entries of concurrent callers
together: one query for the heads of their runs, one insert and one commit per batch, then
one signed checkpoint per run of the batch.
"""

import asyncio
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, func, insert, inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select
from temporalio import activity

from keel.audit_checkpoint import Checkpoints
from keel.db import Database
from keel.schemas.audit import AUDIT_APPEND, AuditAppend, AuditEntry, AuditHead
from keel.tables import AuditRow

__all__ = [
    "GENESIS",
    "AuditBreak",
    "AuditLog",
    "append_audit",
    "entry_hash",
    "read_trail",
    "verify_trail",
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
    entry = AuditAppend(run_id=run_id, key=key, kind=kind, actor=actor, data=data)
    for attempt in range(_ATTEMPTS):
        head = (await session.exec(_heads([run_id]))).first()
        row = _chained(entry, (head[1], head[2]) if head else None, datetime.now(UTC))
        try:
            await session.exec(_INSERT, params=[row.model_dump(exclude={"id"})])
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


# The table itself, not the ORM class: a plain Core insert of many rows, no unit of work.
_INSERT = insert(cast(Table, inspect(AuditRow).local_table))


def _heads(run_ids: Sequence[str]) -> Select[str, int, str]:
    """The newest entry of each of `run_ids` that has one: `(run_id, seq, hash)` rows."""
    newest = (
        select(AuditRow.run_id, func.max(AuditRow.seq).label("seq"))
        .where(col(AuditRow.run_id).in_(run_ids))
        .group_by(col(AuditRow.run_id))
        .subquery()
    )
    return select(AuditRow.run_id, AuditRow.seq, AuditRow.hash).join(
        newest, and_(col(AuditRow.run_id) == newest.c.run_id, col(AuditRow.seq) == newest.c.seq)
    )


def _chained(entry: AuditAppend, head: tuple[int, str] | None, at: datetime) -> AuditRow:
    """`entry` as the row that follows `head` (the run's newest entry, or none yet)."""
    seq, prev_hash = (head[0] + 1, head[1]) if head is not None else (1, GENESIS)
    fields: dict[str, Any] = {
        "seq": seq,
        "run_id": entry.run_id,
        "kind": entry.kind,
        "actor": entry.actor,
        "data": entry.data,
        "at": at,
        "prev_hash": prev_hash,
    }
    return AuditRow(key=entry.key, hash=entry_hash(**fields), **fields)


def _append_batch(conn: Connection, entries: Sequence[AuditAppend]) -> list[AuditHead]:
    """Chain `entries` onto their runs' heads and insert them in one statement; their places.

    A unit of work for `Database.run`. Raises `IntegrityError` (nothing written) when a key
    exists or another writer moved a head meanwhile.
    """
    runs = sorted({entry.run_id for entry in entries})
    heads = {row.run_id: (row.seq, row.hash) for row in conn.execute(_heads(runs))}
    at = datetime.now(UTC)
    values: list[dict[str, Any]] = []
    for entry in entries:
        row = _chained(entry, heads.get(entry.run_id), at)
        heads[entry.run_id] = (row.seq, row.hash)
        values.append(row.model_dump(exclude={"id"}))
    conn.execute(_INSERT, values)
    return [AuditHead(seq=value["seq"], hash=value["hash"]) for value in values]


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


@dataclass
class _Pending:
    entry: AuditAppend
    written: asyncio.Future[AuditHead]

    def settle(self, outcome: AuditHead | BaseException) -> None:
        if self.written.done():  # its caller stopped waiting
            return
        if isinstance(outcome, AuditHead):
            self.written.set_result(outcome)
        else:
            self.written.set_exception(outcome)


class AuditLog:
    """Appends to audit trails; also the `audit.append` activity.

    An append returns once its entry is committed and its run's signed checkpoint
    (`keel.audit_checkpoint`) moved to it. Entries that arrive while a batch is
    being written form the next batch, so concurrent runs share round trips to the
    database. A batch that fails (a key written before, another process's entry on one of
    its runs, an entry that cannot be written) is written again entry by entry with
    `append_audit`, which resolves the first two and fails only the callers of the third.
    """

    def __init__(self, database: Database, checkpoints: Checkpoints) -> None:
        self._database = database
        self.checkpoints = checkpoints
        self._pending: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(
        self, run_id: str, key: str, kind: str, actor: str | None, data: dict[str, Any]
    ) -> AuditHead:
        """Append an entry, once per `key`; its place in the chain, once it is committed."""
        entry = AuditAppend(run_id=run_id, key=key, kind=kind, actor=actor, data=data)
        pending = _Pending(entry, asyncio.get_running_loop().create_future())
        self._pending.append(pending)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_batches())
        return await pending.written

    @activity.defn(name=AUDIT_APPEND)
    async def append_activity(self, entry: AuditAppend) -> AuditHead:
        """Append an entry a workflow asks for (idempotent on its key); its place in the chain.

        A retry that finds its entry returns that entry's place, so the result is the same.
        """
        return await self.append(entry.run_id, entry.key, entry.kind, entry.actor, entry.data)

    async def _write_batches(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._write(batch)
                except Exception as err:  # every caller of the batch gets it
                    for pending in batch:
                        pending.settle(err)
        finally:
            self._writer = None

    async def _write(self, batch: list[_Pending]) -> None:
        entries = [pending.entry for pending in batch]
        outcomes: list[AuditHead | BaseException]
        try:
            outcomes = [*await self._database.run(partial(_append_batch, entries=entries))]
        except Exception:
            # A key written before, another writer's entry on one of the runs, or one entry
            # that cannot be written: each entry alone, with an outcome of its own.
            outcomes = await self._one_by_one(entries)
        # Checkpoints before callers go on: an append has returned only once it is signed.
        newest: dict[str, AuditHead] = {}
        for entry, outcome in zip(entries, outcomes, strict=True):
            head = newest.get(entry.run_id)
            if isinstance(outcome, AuditHead) and (head is None or outcome.seq > head.seq):
                newest[entry.run_id] = outcome
        await asyncio.to_thread(self.checkpoints.record, newest.items())
        for pending, outcome in zip(batch, outcomes, strict=True):
            pending.settle(outcome)

    async def _one_by_one(self, entries: list[AuditAppend]) -> list[AuditHead | BaseException]:
        outcomes: list[AuditHead | BaseException] = []
        async with self._database.sessions() as session:
            for entry in entries:
                try:
                    row = await append_audit(
                        session, entry.run_id, entry.key, entry.kind, entry.actor, entry.data
                    )
                except Exception as err:
                    await session.rollback()
                    outcomes.append(err)
                else:
                    outcomes.append(AuditHead(seq=row.seq, hash=row.hash))
        return outcomes
