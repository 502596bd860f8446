"""`create_ticket`: open a support ticket, at most once per call, whatever Temporal retries.

An attempt can write the row and then fail before Temporal hears of it (the worker dies,
the reply is lost); the next attempt of the same call carries the same idempotency key.
The `tickets` table makes that key unique, so the insert itself is the check: a second
attempt's insert fails on the key, and the tool returns the ticket the first one wrote.
No read-then-write window exists for two concurrent attempts to slip through.
"""

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.errors import KeelUserError
from keel.tables import TicketRow
from tools.builtin.resources import Resources
from tools.registry import ToolContext, tool

__all__ = ["CreateTicketArgs", "CreateTicketResult", "Priority", "create_ticket"]

Priority = Literal["low", "normal", "high"]
"""How soon a person should look at a ticket."""


class CreateTicketArgs(BaseModel):
    """The ticket to open."""

    subject: str = Field(min_length=1, max_length=200, description="One line: the problem.")
    description: str = Field(
        min_length=1,
        max_length=10_000,
        description="What the customer asked, what was tried, what a person should do.",
    )
    priority: Priority = Field(default="normal", description="`high` only if they cannot work.")


class CreateTicketResult(BaseModel):
    """The ticket that exists for this call."""

    ticket_id: int
    subject: str
    priority: Priority
    created: bool = Field(description="False when an earlier attempt of this call opened it.")


@tool(requires_approval=True, idempotent=True, timeout=timedelta(seconds=10))
async def create_ticket(args: CreateTicketArgs, context: ToolContext) -> CreateTicketResult:
    """Open a support ticket so that a person follows up with the customer.

    Use it when the knowledge base does not solve the problem or the customer asks for a
    human. A reviewer approves (and may edit) the ticket before it is opened. Returns the
    ticket's number to give the customer.
    """
    key = context.idempotency_key
    if not key:
        # An empty key would make every call after the first return the first ticket.
        raise KeelUserError("create_ticket needs the call's idempotency key")
    row = TicketRow(
        idempotency_key=key,
        run_id=context.workflow_id,
        subject=args.subject,
        description=args.description,
        priority=args.priority,
        created_at=datetime.now(UTC),
    )
    async with Resources.of(context).sessions() as session:
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            existing = await _by_key(session, key)
            if existing is None:  # another constraint failed, not the key's
                raise
            return _result(existing, created=False)
    return _result(row, created=True)


async def _by_key(session: AsyncSession, key: str) -> TicketRow | None:
    found = await session.exec(select(TicketRow).where(TicketRow.idempotency_key == key))
    return found.first()


def _result(row: TicketRow, *, created: bool) -> CreateTicketResult:
    assert row.id is not None  # the insert assigned it
    return CreateTicketResult.model_validate(
        {"ticket_id": row.id, "subject": row.subject, "priority": row.priority, "created": created}
    )
