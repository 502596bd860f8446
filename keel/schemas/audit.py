"""The audit trail: entries of a run's hash-chained log, and the activity that appends one."""

import hashlib
from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, Field, JsonValue

__all__ = [
    "AUDIT_ANCHOR",
    "AUDIT_APPEND",
    "AuditAppend",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditHead",
    "AuditTrail",
    "AuditVerdict",
    "Verdict",
]


class AuditAppend(BaseModel):
    """Activity input: append one entry to a run's trail, at most once per `key`."""

    run_id: str
    key: str = Field(description="Idempotency key: a retried write finds its entry.")
    kind: str
    actor: str | None = None
    data: dict[str, JsonValue] = Field(default_factory=dict)

    @classmethod
    def run_finished(
        cls, run_id: str, execution: str, status: str, cost_usd: float, answer: str | None
    ) -> Self:
        """The last entry of a run (`execution`: Temporal's run id, so a retry finds it)."""
        data: dict[str, JsonValue] = {"status": status, "cost_usd": cost_usd}
        if answer is not None:
            data["answer_sha256"] = hashlib.sha256(answer.encode()).hexdigest()
        return cls(run_id=run_id, key=f"{execution}:finished", kind="run.finished", data=data)


class AuditEntry(BaseModel):
    """One link of the chain: `hash` is the SHA-256 of the entry's canonical JSON."""

    seq: int
    run_id: str
    kind: str
    actor: str | None
    data: dict[str, JsonValue]
    at: datetime
    prev_hash: str
    hash: str


class AuditHead(BaseModel):
    """An entry's place in its run's chain; `audit.append`'s result for the entry it wrote."""

    seq: int
    hash: str


class AuditCheckpoint(BaseModel):
    """A run's newest entry, signed: `mac` is an HMAC-SHA256 of (run id, seq, hash)."""

    run_id: str
    seq: int
    hash: str
    mac: str


Verdict = Literal["ok", "broken", "forged", "truncated", "rechained", "unanchored"]
"""A run's trail: `ok` (its chain holds and matches its anchor and its checkpoint), `broken`
(a link does not hold), `forged` (its checkpoint's signature does not hold), `truncated` (it
ends before its anchored or checkpointed entry), `rechained` (that entry's hash differs),
`unanchored` (a valid chain with neither to compare it with)."""


class AuditVerdict(BaseModel):
    """What verifying one run's trail against its chain and its anchor found."""

    run_id: str
    verdict: Verdict
    entries: int = Field(description="Entries the trail holds.")
    anchor: AuditHead | None = Field(
        description="The run's `run.finished` entry as Temporal's history of the run holds it."
    )
    checkpoint: AuditHead | None = Field(
        description="The run's newest entry as its signed checkpoint holds it."
    )
    detail: str = Field(description="Where the chain breaks, or what the anchors cover.")


class AuditTrail(BaseModel):
    """`GET /v1/runs/{id}/audit`: a run's entries in chain order, and their verification."""

    run_id: str
    entries: list[AuditEntry]
    verification: AuditVerdict


AUDIT_APPEND = "audit.append"
"""Activity type that appends an entry to a run's audit trail; its result is the `AuditHead`."""

AUDIT_ANCHOR = "audit_anchor"
"""The memo key where a run, as it ends, records the `AuditHead` of its `run.finished` entry."""
