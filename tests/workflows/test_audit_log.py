"""The hash-chained audit trail's writers, on SQLite and on a real PostgreSQL: racing,
batched and repeated appends keep one chain and sign each run's head; an entry that cannot
be written fails alone."""

import asyncio
import uuid
from pathlib import Path

import pytest

from keel.audit import AuditLog, append_audit, read_trail, verify_trail
from keel.audit_checkpoint import Checkpoints
from keel.db import Database, create_engine, init_db, session_factory
from keel.schemas.audit import AuditHead


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_parallel_and_repeated_appends_keep_one_chain(database_url: str) -> None:
    engine = create_engine(database_url)
    await init_db(engine)
    sessions = session_factory(engine)
    run_id = f"run-{uuid.uuid4().hex}"

    async def append(n: int) -> int:
        async with sessions() as session:
            key = f"{run_id}:{n % 12}"
            row = await append_audit(session, run_id, key, "tool.executed", None, {"n": n % 12})
            return row.seq

    try:
        seqs = await asyncio.gather(*(append(n) for n in range(24)))
        async with sessions() as session:
            trail = await read_trail(session, run_id)
    finally:
        await engine.dispose()
    # Twelve keys, each written twice: twelve entries, and a repeat gets the first's seq.
    assert [e.seq for e in trail] == list(range(1, 13))
    assert verify_trail(trail) is None
    assert sorted(set(seqs)) == list(range(1, 13))
    assert len({e.hash for e in trail}) == 12


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_batched_appends_race_another_writer_and_repeat_keys(
    database_url: str, tmp_path: Path
) -> None:
    """One process's `AuditLog` batches its callers' entries; another writer on the same
    runs, and keys sent twice (in one batch and across batches), still give one chain each."""
    database = Database(create_engine(database_url))
    await init_db(database.engine)
    sessions = database.sessions
    checkpoints = Checkpoints(b"k" * 32, tmp_path / "checkpoints")
    audit = AuditLog(database, checkpoints)
    runs = [f"run-{uuid.uuid4().hex}" for _ in range(4)]

    heads: dict[str, set[tuple[int, str]]] = {}

    async def batched(n: int) -> None:
        run_id, key = runs[n % 4], f"{runs[n % 4]}:batched-{n % 20}"
        head = await audit.append(run_id, key, "model.call", None, {"n": n})
        heads.setdefault(key, set()).add((head.seq, head.hash))

    async def elsewhere(n: int) -> None:  # another process's writer, with its own sessions
        run_id = runs[n % 4]
        async with sessions() as session:
            await append_audit(session, run_id, f"{run_id}:other-{n}", "tool.executed", "x", {})

    try:
        await asyncio.gather(*(batched(n) for n in range(40)), *(elsewhere(n) for n in range(12)))
        await asyncio.gather(*(batched(n) for n in range(40)))  # every key again
        async with sessions() as session:
            trails = [await read_trail(session, run_id) for run_id in runs]
    finally:
        await database.dispose()
    for trail in trails:
        assert verify_trail(trail) is None
        # Five batched keys and three of the other writer's per run, each written once.
        assert [e.seq for e in trail] == list(range(1, 9))
        assert sum(e.kind == "model.call" for e in trail) == 5
    # Each append returns its entry's place in the chain, the same for a repeated key.
    written = {(e.seq, e.hash) for trail in trails for e in trail}
    assert all(len(places) == 1 and places <= written for places in heads.values())
    assert len(heads) == 20
    # Each run's checkpoint holds the newest entry this process wrote on it.
    for run_id, trail in zip(runs, trails, strict=True):
        mine = [e for e in trail if e.kind == "model.call"]
        found = checkpoints.read(run_id)
        assert found is not None and checkpoints.signed(found)
        assert (found.seq, found.hash) == (mine[-1].seq, mine[-1].hash)


async def test_an_entry_that_cannot_be_written_fails_only_its_caller(tmp_path: Path) -> None:
    database = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"))
    await init_db(database.engine)
    checkpoints = Checkpoints(b"k" * 32, tmp_path / "checkpoints")
    audit = AuditLog(database, checkpoints)
    run_id = f"run-{uuid.uuid4().hex}"
    try:
        bad, *good = await asyncio.gather(
            audit.append(run_id, f"{run_id}:nan", "model.call", None, {"x": float("nan")}),
            *(
                audit.append(run_id, f"{run_id}:{n}", "model.call", None, {"x": n})
                for n in range(3)
            ),
            return_exceptions=True,
        )
        async with database.sessions() as session:
            trail = await read_trail(session, run_id)
    finally:
        await database.dispose()
    assert isinstance(bad, ValueError) and "Out of range float" in str(bad)
    assert sorted(e.data["x"] for e in trail) == [0, 1, 2] and verify_trail(trail) is None
    assert good == [AuditHead(seq=e.seq, hash=e.hash) for e in trail]
    assert checkpoints.read(run_id) == checkpoints.sign(run_id, good[-1])
