"""The step journal: one `steps` row for every activity execution that finishes.

Operators (and the durability tests) read it to see what a run really executed: a node
that completed once has exactly one `completed` row, whatever happened to the workers.
Rows are queued and written in batches off the activity's path, so journaling adds no
latency to a run; a worker that dies loses at most the last `flush_interval` of rows,
never a run's progress (Temporal's history stays the record).
"""

import asyncio
import contextlib
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, insert
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from keel.db import Database
from keel.tables import StepRow

__all__ = ["StepJournal"]


class StepJournal(Interceptor):
    """Worker interceptor that journals every activity execution."""

    def __init__(self, database: Database, flush_interval: float = 0.25) -> None:
        self._database = database
        self._interval = flush_interval
        self._rows: list[dict[str, Any]] = []
        self._writer: asyncio.Task[None] | None = None

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """Wrap activity executions."""
        return _Inbound(next, self)

    def record(self, outcome: str, started: datetime) -> None:
        """Queue a row for the activity that is executing now."""
        info = activity.info()
        self._rows.append(
            {
                "run_id": info.workflow_id or "",
                "activity": info.activity_type,
                "attempt": info.attempt,
                "outcome": outcome,
                "started_at": started,
                "finished_at": datetime.now(UTC),
            }
        )
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_soon())

    async def flush(self) -> None:
        """Write every queued row now (call before the worker exits)."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self._write()

    async def _write_soon(self) -> None:
        # Rows recorded while a batch is being written go in the next batch of this loop.
        while self._rows:
            await asyncio.sleep(self._interval)
            await self._write()

    async def _write(self) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        # One executemany of a core INSERT, in one trip: no ORM unit of work on the worker's
        # hot loop, and SQLite's write lock held no longer than the insert takes.
        await self._database.run(partial(_insert, rows=rows))


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(StepRow), rows)


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, journal: StepJournal) -> None:
        super().__init__(next)
        self._journal = journal

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        started = datetime.now(UTC)
        try:
            result = await super().execute_activity(input)
        except BaseException:
            self._journal.record("failed", started)
            raise
        self._journal.record("completed", started)
        return result
