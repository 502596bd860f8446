"""The SQL database: a database made by an earlier Keel gains what it lacks on start, and
units of work commit whole or not at all."""

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, insert, select

from keel.db import Database, create_engine, init_db
from keel.tables import StepRow


async def test_an_older_database_gains_missing_columns_with_their_defaults(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'keel.db'}"
    engine = create_engine(url)
    await init_db(engine)
    await engine.dispose()
    # The shape of an older Keel's table: no queue and no action hash yet; one pending row.
    with sqlite3.connect(tmp_path / "keel.db") as db:
        db.execute("DROP INDEX ix_reviews_queue")
        db.execute("ALTER TABLE reviews DROP COLUMN queue")
        db.execute("ALTER TABLE reviews DROP COLUMN action_hash")
        columns = [row[1] for row in db.execute("PRAGMA table_info(reviews)")]
        values = {
            "id": "run-1.review-1",
            "run_id": "run-1",
            "agent": "support",
            "status": "pending",
            "reason": "low_confidence",
            "question": "q",
            "proposed_answer": "a",
            "citations": "[]",
            "passages": "[]",
            "cost_usd": 0.0,
            "claim_version": 0,
            "created_at": "2026-11-01 00:00:00",
            "deadline": "2026-11-08 00:00:00",
        }
        names = [c for c in columns if c in values]
        db.execute(
            f"INSERT INTO reviews ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            [values[c] for c in names],
        )

    engine = create_engine(url)
    await init_db(engine)
    await init_db(engine)  # and again: nothing left to add
    await engine.dispose()

    with sqlite3.connect(tmp_path / "keel.db") as db:
        row = db.execute("SELECT queue, action_hash FROM reviews").fetchone()
        indexes = {r[1] for r in db.execute("PRAGMA index_list(reviews)")}
    assert row == ("default", "")
    assert "ix_reviews_queue" in indexes


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
