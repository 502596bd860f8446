"""SQL tables: what Temporal is not made to query (reviews, steps, tools, tickets)."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

__all__ = ["ReviewRow", "StepRow", "TicketRow", "ToolRow"]


def _utc(**kwargs: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), **kwargs))


class ReviewRow(SQLModel, table=True):
    """One review in the queue: an index of a workflow's pending wait, never the only copy."""

    __tablename__ = "reviews"

    id: str = Field(primary_key=True, max_length=300)
    run_id: str = Field(index=True, max_length=250)
    agent: str = Field(index=True, max_length=100)
    status: str = Field(index=True, max_length=20)
    reason: str = Field(max_length=40)
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
    answer: str | None = None
    arguments: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    comment: str | None = None
    reviewer: str | None = Field(default=None, max_length=200)
    created_at: datetime = _utc(nullable=False, index=True)
    deadline: datetime = _utc(nullable=False)
    decided_at: datetime | None = _utc(nullable=True)


class StepRow(SQLModel, table=True):
    """One finished execution of an activity: the journal of what each run really did."""

    __tablename__ = "steps"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, max_length=250)
    activity: str = Field(max_length=200)
    attempt: int
    outcome: str = Field(max_length=20)
    started_at: datetime = _utc(nullable=False)
    finished_at: datetime = _utc(nullable=False)


class ToolRow(SQLModel, table=True):
    """One tool of the catalog the workers published (`keel.schemas.tools.ToolInfo`)."""

    __tablename__ = "tools"

    name: str = Field(primary_key=True, max_length=64)
    info: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    published_at: datetime = _utc(nullable=False)


class TicketRow(SQLModel, table=True):
    """One support ticket the `create_ticket` tool opened; its call's key makes it unique."""

    __tablename__ = "tickets"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=300)
    run_id: str = Field(index=True, max_length=250)
    subject: str = Field(max_length=200)
    description: str
    priority: str = Field(max_length=10)
    created_at: datetime = _utc(nullable=False)
