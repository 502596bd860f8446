"""The SQL database, on SQLite and on a real PostgreSQL: units of work commit whole or not
at all, and a database made by an earlier Keel gains the columns it lacks."""

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.db import Database, create_engine, init_db, session_factory
from keel.keys import create_key, list_keys, resolve_key
from keel.labels import agent_labels, grade_label, observations
from keel.tables import ReviewRow, StepRow


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_unit_of_work_commits_whole_or_not_at_all(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    database = Database(create_engine(database_url))
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


# `labels` as Keel made it before audit sampling: no `source`, no `weight`.
_OLD_LABELS = """CREATE TABLE labels (
    review_id VARCHAR(300) PRIMARY KEY, run_id VARCHAR(250) NOT NULL,
    agent VARCHAR(100) NOT NULL, reason VARCHAR(40) NOT NULL, confidence FLOAT,
    threshold FLOAT, verdict VARCHAR(20) NOT NULL, needed_person BOOLEAN NOT NULL,
    reviewer VARCHAR(200), decided_at TIMESTAMP WITH TIME ZONE NOT NULL)"""
_OLD_LABEL = """INSERT INTO labels VALUES ('run-1.review-1', 'run-1', 'support',
    'low_confidence', 0.4, 0.6, 'reject', TRUE, 'ann', '2026-11-01 00:00:00+00')"""


@asynccontextmanager
async def _upgraded(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, *old_schema: str
) -> AsyncIterator[AsyncEngine]:
    """A database of its own on `backend`, made by `old_schema` (SQL an earlier Keel ran), then
    opened by this Keel twice (the second time finds nothing left to add): its engine."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    else:
        server: str = request.getfixturevalue("postgres_url")
        name = f"old_{uuid.uuid4().hex}"
        admin = create_engine(server).execution_options(isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        await admin.dispose()
        url = server.replace("/postgres?", f"/{name}?")
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in old_schema:
                await conn.exec_driver_sql(statement)
        await init_db(engine)
        await init_db(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_labels_from_before_audit_sampling_are_escalations_of_weight_one(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with (
        _upgraded(backend, tmp_path, request, _OLD_LABELS, _OLD_LABEL) as engine,
        session_factory(engine)() as session,
    ):
        session.add(grade_label(_graded_audit()))
        await session.commit()
        labels = await agent_labels(session, "support")
    assert [(label.source, label.weight, label.verdict) for label in labels] == [
        ("escalation", 1.0, "reject"),
        ("audit", 20.0, "wrong"),
    ]
    assert [(o.weight, o.needed_person, o.forced) for o in observations(labels)] == [
        (1.0, True, False),
        (20.0, True, False),
    ]


def _graded_audit() -> ReviewRow:
    now = datetime.now(UTC)
    return ReviewRow(
        id="run-2.audit",
        run_id="run-2",
        agent="support",
        kind="audit",
        queue="audit",
        status="graded",
        reason="audit",
        question="q",
        proposed_answer="a",
        citations=[],
        passages=[],
        confidence=0.9,
        threshold=0.6,
        sampling_rate=0.05,
        grade="wrong",
        created_at=now,
        deadline=now,
        decided_at=now,
    )


# `api_keys` as Keel made it before principals: two keys, one name.
_OLD_API_KEYS = """CREATE TABLE api_keys (
    id VARCHAR(40) PRIMARY KEY, name VARCHAR(200) NOT NULL, role VARCHAR(20) NOT NULL,
    secret_sha256 VARCHAR(64) NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    revoked_at TIMESTAMP WITH TIME ZONE)"""
_OLD_KEYS = """INSERT INTO api_keys VALUES
    ('a0a0a0a0a0a0', 'ana', 'admin', 'x', '2026-11-01 00:00:00+00', NULL),
    ('b1b1b1b1b1b1', 'ana', 'reviewer', 'y', '2026-11-02 00:00:00+00', NULL)"""
_LATE_KEY = """INSERT INTO api_keys (id, name, role, secret_sha256, created_at)
    VALUES ('c2c2c2c2c2c2', 'late', 'reviewer', '{digest}', '2026-11-03 00:00:00+00')"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_keys_from_before_principals_are_each_their_own_principal(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with _upgraded(backend, tmp_path, request, _OLD_API_KEYS, _OLD_KEYS) as engine:
        async with session_factory(engine)() as session:
            added, _ = await create_key(session, "reviewer", "ana's phone", "a0a0a0a0a0a0")
            keys = [(row.id, row.principal) for row in await list_keys(session)]
        # An older Keel still running during the upgrade writes a key with no principal.
        digest = hashlib.sha256(b"c2c2c2c2c2c2:s").hexdigest()
        async with engine.begin() as conn:
            await conn.exec_driver_sql(_LATE_KEY.format(digest=digest))
        database = Database(engine)
        late = await database.run(partial(resolve_key, key="keel_c2c2c2c2c2c2_s"))
        await database.dispose()
    assert keys == [
        ("a0a0a0a0a0a0", "a0a0a0a0a0a0"),
        ("b1b1b1b1b1b1", "b1b1b1b1b1b1"),
        (added.id, "a0a0a0a0a0a0"),
    ]
    assert late is not None and late.principal == "c2c2c2c2c2c2"
