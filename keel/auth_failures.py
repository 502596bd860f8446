"""Failed authentications per client address, in fixed windows, counted in the database.

Every API process on one database shares the counts, so N processes do not allow N times
the budget. Only failures write (one upsert each: `INSERT … ON CONFLICT DO UPDATE …
RETURNING`, atomic on SQLite and PostgreSQL); a request with a good key, or an address the
process already knows to be over its budget, costs no query. Windows that have ended are
deleted by whoever counts a failure after they end, at most once a window per process.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, case, delete
from sqlalchemy.dialects import postgresql, sqlite

from keel.tables import AuthFailureRow

__all__ = ["FailureWindow", "count_failure"]

_TABLE: Table = AuthFailureRow.metadata.tables["auth_failures"]


@dataclass(frozen=True)
class FailureWindow:
    """An address's failures so far in its current window, and when that window ends."""

    failures: int
    ends: float


def count_failure(
    conn: Connection, *, address: str, now: float, window_s: float, prune: bool = False
) -> FailureWindow:
    """Count one failure of `address` at `now` (seconds since the epoch); `prune` old windows."""
    ended = _TABLE.c.window_start <= now - window_s
    insert: Any = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    upsert = (
        insert(_TABLE)
        .values(address=address, window_start=now, failures=1)
        .on_conflict_do_update(
            index_elements=[_TABLE.c.address],
            # Both read the row as it was: a window that ended starts again at one.
            set_={
                "failures": case((ended, 1), else_=_TABLE.c.failures + 1),
                "window_start": case((ended, now), else_=_TABLE.c.window_start),
            },
        )
        .returning(_TABLE.c.failures, _TABLE.c.window_start)
    )
    row = conn.execute(upsert).one()
    if prune:
        conn.execute(delete(_TABLE).where(ended))
    return FailureWindow(failures=int(row.failures), ends=float(row.window_start) + window_s)
