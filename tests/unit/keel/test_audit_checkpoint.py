"""Signed audit checkpoints: signatures only Keel's key makes, files that never move back,
and a key file created once, readable by its owner alone."""

import asyncio
import random
import stat
from pathlib import Path

import pytest

from keel.audit_checkpoint import Checkpoints
from keel.schemas.audit import AuditHead
from keel.settings import Settings

KEY = b"k" * 32


def head(seq: int) -> AuditHead:
    return AuditHead(seq=seq, hash=f"{seq:064x}")


def test_a_checkpoint_is_signed_for_its_run_and_head_only(tmp_path: Path) -> None:
    checkpoints = Checkpoints(KEY, tmp_path)
    signed = checkpoints.sign("run-1", head(3))
    assert checkpoints.signed(signed)
    assert not checkpoints.signed(signed.model_copy(update={"seq": 4}))
    assert not checkpoints.signed(signed.model_copy(update={"hash": "0" * 64}))
    assert not checkpoints.signed(signed.model_copy(update={"run_id": "run-2"}))
    assert not Checkpoints(b"o" * 32, tmp_path).signed(signed)  # another key
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Checkpoints(b"short", tmp_path)


def test_a_checkpoint_moves_forward_only(tmp_path: Path) -> None:
    checkpoints = Checkpoints(KEY, tmp_path / "checkpoints")
    assert checkpoints.read("run-1") is None
    checkpoints.record([("run-1", head(2)), ("run/2", head(1))])
    checkpoints.record([("run-1", head(1))])  # a late writer's older head
    found = checkpoints.read("run-1")
    assert found is not None and (found.seq, found.hash) == (2, head(2).hash)
    assert checkpoints.signed(found)
    checkpoints.record([("run-1", head(5))])
    assert (found := checkpoints.read("run-1")) is not None and found.seq == 5
    assert sorted(checkpoints.run_ids()) == ["run-1", "run/2"]
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


async def test_the_key_file_is_created_once_mode_0600(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    # Processes starting together all get the one key.
    made = await asyncio.gather(
        *(asyncio.to_thread(Checkpoints.from_settings, settings) for _ in range(8))
    )
    key_file = tmp_path / "data" / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    signed = made[0].sign("run-1", head(1))
    assert all(checkpoints.signed(signed) for checkpoints in made)
    assert made[0].directory == tmp_path / "data" / "audit-checkpoints"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["audit.key"]

    configured = Checkpoints.from_settings(
        Settings(data_dir=tmp_path / "other", audit_key="s" * 32, audit_checkpoint_dir=tmp_path)
    )
    assert configured.directory == tmp_path and not (tmp_path / "other").exists()
    assert not configured.signed(signed)


async def test_concurrent_writers_leave_the_newest_head(tmp_path: Path) -> None:
    # Each writer has its own `Checkpoints`, as processes sharing the directory do; heads
    # arrive in any order.
    writers = [Checkpoints(KEY, tmp_path) for _ in range(8)]
    seqs = list(range(1, 201))
    random.Random(7).shuffle(seqs)
    await asyncio.gather(
        *(asyncio.to_thread(writers[seq % 8].record, [("run-1", head(seq))]) for seq in seqs)
    )
    found = writers[0].read("run-1")
    assert found is not None and found.seq == 200
