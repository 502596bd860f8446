"""Heartbeats for every activity that asks for them, so a dead worker is noticed in seconds.

A model or tool call may legitimately take most of a minute, so its start-to-close timeout
cannot tell a slow call from a worker that was killed mid-call. A heartbeat timeout can:
the workflow schedules those calls with a short `heartbeat_timeout`, and this interceptor
heartbeats for them while they run (four times per timeout; the SDK sends at most one
heartbeat per 80 % of it). When the worker dies the heartbeats stop, Temporal fails the
attempt after the heartbeat timeout, and another worker runs the retry. Activities
without a heartbeat timeout are left alone.
"""

import asyncio
from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

__all__ = ["Heartbeats"]


class Heartbeats(Interceptor):
    """Worker interceptor: heartbeat while an activity with a heartbeat timeout runs."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """Wrap activity executions."""
        return _Inbound(next)


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        timeout = activity.info().heartbeat_timeout
        if not timeout:
            return await super().execute_activity(input)
        beating = asyncio.create_task(_beat(timeout.total_seconds() / 4))
        try:
            return await super().execute_activity(input)
        finally:
            beating.cancel()


async def _beat(every_s: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(every_s)
