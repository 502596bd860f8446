"""`keel_activity_retries`: a counter of activity attempts after the first, by activity type."""

from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

__all__ = ["ActivityRetries"]


class ActivityRetries(Interceptor):
    """Worker interceptor that counts retried activity executions.

    The counter goes to Temporal's activity metric meter, which labels it with the
    activity and workflow types, the namespace and the task queue.
    """

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """Wrap activity executions."""
        return _Inbound(next)


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if activity.info().attempt > 1:
            activity.metric_meter().create_counter(
                "keel_activity_retries", "Activity attempts after the first."
            ).add(1)
        return await super().execute_activity(input)
