"""SQL tables: what Temporal is not made to query (reviews, steps, tools, tickets)."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Dialect, TypeDecorator, UniqueConstraint
from sqlmodel import AutoString, Field, SQLModel

from keel.schemas.policy import ExpiryPath, ReviewReason
from keel.schemas.reviews import Grade, ReviewKind, ReviewStatus

__all__ = [
    "BACKFILL_FROM",
    "ApiKeyRow",
    "AuditRow",
    "AuthFailureRow",
    "LabelRow",
    "ReviewRow",
    "StepRow",
    "TicketRow",
    "ToolRow",
    "UtcDateTime",
]


BACKFILL_FROM = "backfill_from"
"""A column's `info` key: when `keel.db` adds the column to an older table, it copies the
named column of the same row into it."""


class UtcDateTime(TypeDecorator[datetime]):
    """A UTC instant on every database: SQLite keeps no offset, so reads get UTC put back."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Aware values are stored in UTC; naive ones are taken to be UTC already."""
        return value.astimezone(UTC) if value is not None and value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Always an aware UTC datetime (or None)."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc(**kwargs: Any) -> Any:
    return Field(sa_column=Column(UtcDateTime(), **kwargs))


class ReviewRow(SQLModel, table=True):
    """One review in the queue: an index of a workflow's pending wait, never the only copy.

    An `audit` row is no wait at all: an answer already sent, sampled with probability
    `sampling_rate` to be graded; its grade lives here and in `LabelRow` only.
    """

    # sqlmodel types `__tablename__` as a `declared_attr` only; SQLAlchemy takes a string too.
    __tablename__ = "reviews"  # pyright: ignore[reportAssignmentType]

    id: str = Field(primary_key=True, max_length=300)
    run_id: str = Field(index=True, max_length=250)
    agent: str = Field(index=True, max_length=100)
    queue: str = Field(default="default", index=True, max_length=100)
    status: ReviewStatus = Field(index=True, sa_type=AutoString(20))
    reason: ReviewReason = Field(index=True, sa_type=AutoString(40))
    node: str | None = Field(default=None, max_length=100)
    triage: str | None = Field(default=None, max_length=100)
    question: str
    proposed_answer: str
    citations: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    passages: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    confidence: float | None = None
    threshold: float | None = None
    cost_usd: float = 0.0
    tool_call: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    tool_parameters: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    verification: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    signals: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    action_hash: str = Field(default="", max_length=64)
    claimed_by: str | None = Field(default=None, max_length=200)
    claim_expires_at: datetime | None = _utc(nullable=True)
    claim_version: int = 0
    deadline_path: ExpiryPath | None = Field(default=None, sa_type=AutoString(30))
    answer: str | None = None
    edited_citations: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    arguments: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    comment: str | None = None
    reviewer: str | None = Field(default=None, max_length=200)
    created_at: datetime = _utc(nullable=False, index=True)
    deadline: datetime = _utc(nullable=False)
    decided_at: datetime | None = _utc(nullable=True)
    kind: ReviewKind = Field(default="escalation", index=True, sa_type=AutoString(20))
    sampling_rate: float | None = None
    grade: Grade | None = Field(default=None, sa_type=AutoString(10))


class StepRow(SQLModel, table=True):
    """One finished execution of an activity: the journal of what each run really did."""

    __tablename__ = "steps"  # pyright: ignore[reportAssignmentType]

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, max_length=250)
    activity: str = Field(max_length=200)
    attempt: int
    outcome: str = Field(max_length=20)
    started_at: datetime = _utc(nullable=False)
    finished_at: datetime = _utc(nullable=False)


class ToolRow(SQLModel, table=True):
    """One tool of the catalog the workers published (`keel.schemas.tools.ToolInfo`)."""

    __tablename__ = "tools"  # pyright: ignore[reportAssignmentType]

    name: str = Field(primary_key=True, max_length=64)
    info: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    published_at: datetime = _utc(nullable=False)


class TicketRow(SQLModel, table=True):
    """One support ticket the `create_ticket` tool opened; its call's key makes it unique."""

    __tablename__ = "tickets"  # pyright: ignore[reportAssignmentType]

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=300)
    run_id: str = Field(index=True, max_length=250)
    subject: str = Field(max_length=200)
    description: str
    priority: str = Field(max_length=10)
    created_at: datetime = _utc(nullable=False)


class ApiKeyRow(SQLModel, table=True):
    """One API key: its principal, its role and the SHA-256 of its secret, never the secret.

    A key made before principals existed gets its own id as its principal (`keel.keys`).
    """

    __tablename__ = "api_keys"  # pyright: ignore[reportAssignmentType]

    id: str = Field(primary_key=True, max_length=40)
    principal: str = Field(
        index=True, max_length=64, sa_column_kwargs={"info": {BACKFILL_FROM: "id"}}
    )
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    secret_sha256: str = Field(max_length=64)
    created_at: datetime = _utc(nullable=False)
    revoked_at: datetime | None = _utc(nullable=True)


class AuthFailureRow(SQLModel, table=True):
    """Failed authentications of one client address in its current window (`keel.auth_failures`).

    Shared by every API process on the database: one row per address, rewritten in place by
    each failure; rows of ended windows are deleted now and then.
    """

    __tablename__ = "auth_failures"  # pyright: ignore[reportAssignmentType]

    address: str = Field(primary_key=True, max_length=64)
    window_start: float = Field(description="When the window began, in seconds since the epoch.")
    failures: int


class AuditRow(SQLModel, table=True):
    """One entry of a run's hash-chained audit trail (`keel.audit`); rows are only added."""

    __tablename__ = "audit"  # pyright: ignore[reportAssignmentType]
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, max_length=250)
    seq: int
    key: str = Field(unique=True, max_length=400)
    kind: str = Field(max_length=40)
    actor: str | None = Field(default=None, max_length=200)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    at: datetime = _utc(nullable=False)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class LabelRow(SQLModel, table=True):
    """A reviewer's verdict kept as a label: did this run need a person? (`keel.labels`).

    `source` is `escalation` (a decided review) or `audit` (a graded audit sample);
    `weight` is 1 / the probability that the run was labelled.
    """

    __tablename__ = "labels"  # pyright: ignore[reportAssignmentType]

    review_id: str = Field(primary_key=True, max_length=300)
    run_id: str = Field(index=True, max_length=250)
    agent: str = Field(index=True, max_length=100)
    reason: str = Field(max_length=40)
    confidence: float | None = None
    threshold: float | None = None
    verdict: str = Field(max_length=20)
    needed_person: bool
    reviewer: str | None = Field(default=None, max_length=200)
    decided_at: datetime = _utc(nullable=False)
    source: str = Field(default="escalation", index=True, max_length=20)
    weight: float = 1.0
    signals: dict[str, Any] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="The evidence on the answer its run decided on (`Signals`), if any.",
    )
