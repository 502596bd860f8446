"""Failed authentications per address, counted atomically in a real SQLite file."""

import asyncio
import sqlite3
from functools import partial

from keel.auth_failures import FailureWindow, count_failure
from keel.db import Database, create_engine, init_db


async def test_failures_count_in_windows_shared_by_every_connection(tmp_path) -> None:
    database = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keel.db'}"))
    await init_db(database.engine)
    try:
        count = partial(count_failure, address="203.0.113.7", now=1000.0, window_s=60)
        at_once = await asyncio.gather(*(database.run(count) for _ in range(20)))
        assert sorted(w.failures for w in at_once) == list(range(1, 21))
        assert {w.ends for w in at_once} == {1060.0}

        later = partial(count_failure, address="203.0.113.7", now=1059.0, window_s=60)
        assert await database.run(later) == FailureWindow(failures=21, ends=1060.0)
        # The window ended: the count starts again, and pruning drops other ended windows.
        await database.run(partial(count_failure, address="192.0.2.1", now=1061.0, window_s=60))
        again = partial(count_failure, address="203.0.113.7", now=1130.0, window_s=60, prune=True)
        assert await database.run(again) == FailureWindow(failures=1, ends=1190.0)
    finally:
        await database.dispose()
    with sqlite3.connect(tmp_path / "keel.db") as db:
        rows = db.execute("SELECT address, failures FROM auth_failures").fetchall()
    assert rows == [("203.0.113.7", 1)]
