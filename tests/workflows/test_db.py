"""The SQL database, on SQLite and on a real PostgreSQL: units of work commit whole or not
at all."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, insert, select

from keel.db import Database, create_engine, init_db
from keel.tables import StepRow


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_unit_of_work_commits_whole_or_not_at_all(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        request.getfixturevalue("postgres_url")
        if backend == "postgresql"
        else f"sqlite+aiosqlite:///{tmp_path / 'keel.db'}"
    )
    database = Database(create_engine(url))
    await init_db(database.engine)
    run_id = f"run-{tmp_path.name}-{backend}"
    row = {"run_id": run_id, "activity": "a", "attempt": 1, "outcome": "completed"}
    row |= {"started_at": datetime.now(UTC), "finished_at": datetime.now(UTC)}

    def two_rows(conn: Connection, fail: bool) -> int:
        conn.execute(insert(StepRow), [row, row])
        if fail:
            raise RuntimeError("after the insert")
        return 2

    def count(conn: Connection) -> int:
        return conn.execute(select(func.count()).where(StepRow.run_id == run_id)).scalar_one()

    try:
        assert await database.run(lambda conn: two_rows(conn, fail=False)) == 2
        with pytest.raises(RuntimeError, match="after the insert"):
            await database.run(lambda conn: two_rows(conn, fail=True))
        assert await database.run(count) == 2
        async with database.sessions() as session:  # the async sessions see the same rows
            seen = await session.execute(select(func.count()).where(StepRow.run_id == run_id))
            assert seen.scalar_one() == 2
    finally:
        await database.dispose()
