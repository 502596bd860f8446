"""The step journal: one `steps` row for every activity execution that finishes.

Operators (and the durability tests) read it to see what a run really executed: a node
that completed once has exactly one `completed` row, whatever happened to the workers.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from keel.tables import StepRow

__all__ = ["StepJournal"]


class StepJournal(Interceptor):
    """Worker interceptor that journals every activity execution."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """Wrap activity executions."""
        return _Inbound(next, self._sessions)


class _Inbound(ActivityInboundInterceptor):
    def __init__(
        self, next: ActivityInboundInterceptor, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        super().__init__(next)
        self._sessions = sessions

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        started = datetime.now(UTC)
        try:
            result = await super().execute_activity(input)
        except BaseException:
            await self._record("failed", started)
            raise
        await self._record("completed", started)
        return result

    async def _record(self, outcome: str, started: datetime) -> None:
        info = activity.info()
        async with self._sessions() as session:
            session.add(
                StepRow(
                    run_id=info.workflow_id or "",
                    activity=info.activity_type,
                    attempt=info.attempt,
                    outcome=outcome,
                    started_at=started,
                    finished_at=datetime.now(UTC),
                )
            )
            await session.commit()
