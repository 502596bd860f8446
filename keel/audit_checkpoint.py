"""Signed audit checkpoints: each run's newest entry, signed, kept outside the database.

A checkpoint holds a run's newest `seq` and `hash` and an HMAC-SHA256 of (run id, seq, hash)
under Keel's audit key (`KEEL_AUDIT_KEY`, or `<data_dir>/audit.key`, created with mode 0600 on
first use). It is a file of its own per run in the checkpoint directory (`<data_dir>/
audit-checkpoints`), replaced atomically after each committed append to the run, and never
moved back to an older entry. A writer of Keel's database can neither forge one (no key)
nor delete one (not in the database), so a trail that ends before its checkpoint has lost
entries, those appended after the run ended included.

Writers take a lock on the directory (`flock`) to read, compare and replace, so the newest
entry wins whatever order processes finish in; on a network file system without `flock`, two
processes appending to one run at the same moment may leave its checkpoint at the older of
their two entries. A checkpoint never runs ahead of its run's head.
"""

import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Self

from pydantic import ValidationError

from keel.schemas.audit import AuditCheckpoint, AuditHead
from keel.settings import Settings

__all__ = ["Checkpoints"]

_KEY_BYTES = 32


class Checkpoints:
    """A directory of signed checkpoints, one per run, and the key that signs them."""

    def __init__(self, key: bytes, directory: Path) -> None:
        if len(key) < _KEY_BYTES:
            raise ValueError(f"the audit key must be at least {_KEY_BYTES} bytes")
        self._key = key
        self.directory = directory

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The key and directory of `settings`; creates the key file on first use."""
        if settings.audit_key is not None:
            key = settings.audit_key.get_secret_value().encode()
        else:
            key = _key_file(settings.data_dir / "audit.key")
        return cls(key, settings.audit_checkpoint_dir or settings.data_dir / "audit-checkpoints")

    def sign(self, run_id: str, head: AuditHead) -> AuditCheckpoint:
        """`head` of `run_id`'s chain, signed."""
        return AuditCheckpoint(
            run_id=run_id, seq=head.seq, hash=head.hash, mac=self._mac(run_id, head)
        )

    def signed(self, checkpoint: AuditCheckpoint) -> bool:
        """Whether `checkpoint` was signed with this key."""
        head = AuditHead(seq=checkpoint.seq, hash=checkpoint.hash)
        return hmac.compare_digest(checkpoint.mac, self._mac(checkpoint.run_id, head))

    def record(self, heads: Iterable[tuple[str, AuditHead]]) -> None:
        """Move each run's checkpoint to its new head (blocking file I/O: run in a thread)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # Processes sharing the directory read, compare and replace under one lock, so a
        # slower writer's older head never replaces a newer one.
        with (self.directory / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for run_id, head in heads:
                current = self.read(run_id)
                if current is not None and current.seq >= head.seq:
                    continue
                path = self._path(run_id)
                temporary = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
                temporary.write_text(self.sign(run_id, head).model_dump_json())
                temporary.replace(path)  # atomic: a reader sees the old checkpoint or the new

    def read(self, run_id: str) -> AuditCheckpoint | None:
        """`run_id`'s checkpoint, signed or not; None when it has none."""
        try:
            return AuditCheckpoint.model_validate_json(self._path(run_id).read_bytes())
        except FileNotFoundError:
            return None

    def run_ids(self) -> Iterator[str]:
        """The runs that have a checkpoint."""
        for path in self.directory.glob("*.json"):
            try:
                yield AuditCheckpoint.model_validate_json(path.read_bytes()).run_id
            except ValidationError:  # not a checkpoint: `read` reports it for its run
                continue

    def _mac(self, run_id: str, head: AuditHead) -> str:
        message = json.dumps(
            ["keel.audit.checkpoint/1", run_id, head.seq, head.hash], separators=(",", ":")
        )
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def _path(self, run_id: str) -> Path:
        # Run ids come from clients' idempotency keys: the file is named by their digest.
        return self.directory / f"{hashlib.sha256(run_id.encode()).hexdigest()}.json"


def _key_file(path: Path) -> bytes:
    """The key in `path`, created (mode 0600) when there is none yet.

    Processes starting together race to create it: each writes a key of its own to a
    private file and links it in place, which succeeds for one; the others read the winner's.
    """
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(_KEY_BYTES))
    try:
        os.link(mine, path)
    except FileExistsError:
        pass
    finally:
        mine.unlink()
    return path.read_bytes().strip()
