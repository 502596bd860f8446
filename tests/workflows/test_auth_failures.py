"""Failed authentications per address, counted atomically on SQLite and a real PostgreSQL."""

import asyncio
import uuid
from functools import partial

import pytest
from sqlalchemy import Connection, select
from sqlmodel import col

from keel.auth_failures import FailureWindow, count_failure
from keel.db import Database, create_engine, init_db
from keel.tables import AuthFailureRow


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_failures_count_in_windows_shared_by_every_connection(database_url: str) -> None:
    database = Database(create_engine(database_url))
    await init_db(database.engine)
    flooder, other = f"flooder-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"

    def addresses(conn: Connection) -> list[tuple[str, int]]:
        rows = conn.execute(
            select(AuthFailureRow.address, AuthFailureRow.failures).where(
                col(AuthFailureRow.address).in_([flooder, other])
            )
        )
        return [(address, failures) for address, failures in rows]

    try:
        count = partial(count_failure, address=flooder, now=1000.0, window_s=60)
        at_once = await asyncio.gather(*(database.run(count) for _ in range(20)))
        assert sorted(w.failures for w in at_once) == list(range(1, 21))
        assert {w.ends for w in at_once} == {1060.0}

        later = partial(count_failure, address=flooder, now=1059.0, window_s=60)
        assert await database.run(later) == FailureWindow(failures=21, ends=1060.0)
        # The window ended: the count starts again, and pruning drops other ended windows.
        await database.run(partial(count_failure, address=other, now=1061.0, window_s=60))
        again = partial(count_failure, address=flooder, now=1130.0, window_s=60, prune=True)
        assert await database.run(again) == FailureWindow(failures=1, ends=1190.0)
        assert await database.run(addresses) == [(flooder, 1)]
    finally:
        await database.dispose()
