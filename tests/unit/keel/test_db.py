"""The SQL database: a database made by an earlier Keel gains what it lacks on start."""

import sqlite3

from keel.db import create_engine, init_db


async def test_an_older_database_gains_missing_columns_with_their_defaults(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'keel.db'}"
    engine = create_engine(url)
    await init_db(engine)
    await engine.dispose()
    # The shape of an older Keel's table: no queue, action hash or audit columns yet; one
    # pending row.
    with sqlite3.connect(tmp_path / "keel.db") as db:
        db.execute("DROP INDEX ix_reviews_queue")
        db.execute("DROP INDEX ix_reviews_kind")
        for column in ("queue", "action_hash", "kind", "sampling_rate", "grade"):
            db.execute(f"ALTER TABLE reviews DROP COLUMN {column}")
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
        columns = "queue, action_hash, kind, sampling_rate, grade"
        row = db.execute(f"SELECT {columns} FROM reviews").fetchone()
        indexes = {r[1] for r in db.execute("PRAGMA index_list(reviews)")}
    assert row == ("default", "", "escalation", None, None)
    assert {"ix_reviews_queue", "ix_reviews_kind"} <= indexes
