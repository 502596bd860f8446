"""How each kind of activity is scheduled: timeouts, heartbeats, retries, summary.

Every activity Keel's workflows run takes its options from here, one constant per kind
(or a function, where a deployment or a tool carries its own timeout and attempts):

```python
await workflow.execute_activity(
    OPEN_REVIEW, pending, **REVIEW_QUEUE_WRITE_OPTIONS.for_activity(summary="open review")
)
```

These values enter every run's history (the scheduled activity's timeouts and retry
policy): change one and the runs started after it differ from those before.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from keel.schemas.routing import Deployment
    from keel.schemas.tools import ToolInfo

__all__ = [
    "AUDIT_APPEND_OPTIONS",
    "CALL_HEARTBEAT_TIMEOUT",
    "CLEAR_STAGED_OPTIONS",
    "GUARD_SCREEN_OPTIONS",
    "INGEST_BATCH_OPTIONS",
    "MODEL_PLAN_OPTIONS",
    "REFRESH_INDEX_OPTIONS",
    "RETRIEVAL_REQUEST_OPTIONS",
    "RETRIEVAL_RETRY",
    "RETRIEVAL_SEARCH_OPTIONS",
    "REVIEW_QUEUE_WRITE_OPTIONS",
    "TOOL_CATALOG_OPTIONS",
    "ActivityOptions",
    "model_call_options",
    "tool_call_options",
]


@dataclass(frozen=True)
class ActivityOptions:
    """The options one kind of activity is scheduled with (None: Temporal's default)."""

    start_to_close_timeout: timedelta | None = None
    """Longest one attempt may run before Temporal fails it and retries."""
    schedule_to_close_timeout: timedelta | None = None
    """Longest the activity may take from its scheduling, every attempt included."""
    heartbeat_timeout: timedelta | None = None
    """Longest between two heartbeats before the attempt counts as lost (its worker dead).
    Ignored for a local activity, which runs on the worker running the workflow."""
    retry_policy: RetryPolicy | None = None
    """How failed attempts are retried; Temporal's default policy (unlimited) when None."""
    summary: str | None = None
    """What the Temporal UI shows for the activity, when it is the same for every call."""

    def for_activity(self, summary: str | None = None) -> dict[str, Any]:
        """Keyword arguments of `workflow.execute_activity`; `summary` names this call."""
        return {**self.for_local_activity(summary), "heartbeat_timeout": self.heartbeat_timeout}

    def for_local_activity(self, summary: str | None = None) -> dict[str, Any]:
        """Keyword arguments of `workflow.execute_local_activity`; `summary` names this call."""
        return {
            "start_to_close_timeout": self.start_to_close_timeout,
            "schedule_to_close_timeout": self.schedule_to_close_timeout,
            "retry_policy": self.retry_policy,
            "summary": summary if summary is not None else self.summary,
        }


CALL_HEARTBEAT_TIMEOUT = timedelta(seconds=3)
"""Heartbeat timeout of model and tool calls (the worker heartbeats for them, see
`worker/heartbeats.py`): a killed worker's call is retried elsewhere this soon, however
long its start-to-close timeout. Long enough that a busy but live worker is not taken for
dead (the SDK sends a heartbeat at most every 80 % of it)."""

RETRIEVAL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
"""Retries for retrieval activities: transient failures until they pass; the typed errors
(`UnknownCollection`, `InvalidDocument`…) are raised non-retryable and fail at once."""

MODEL_PLAN_OPTIONS = ActivityOptions(start_to_close_timeout=timedelta(seconds=10))
"""`model.plan` (local): a route's deployments and prices, once per route and run."""

TOOL_CATALOG_OPTIONS = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=10), summary="tool catalog"
)
"""`tools.catalog` (local): the tools the workers run, once per run."""

GUARD_SCREEN_OPTIONS = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
)
"""`guard.screen` (local): the guards over some texts of a step."""

REVIEW_QUEUE_WRITE_OPTIONS = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
)
"""`review.*`: a write to the review queue (open, claim, move, close)."""

AUDIT_APPEND_OPTIONS = ActivityOptions(start_to_close_timeout=timedelta(seconds=10))
"""`audit.append` (local): an entry of the run's audit trail."""

RETRIEVAL_SEARCH_OPTIONS = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=5,
    ),
)
"""`retrieval.search` from an agent's node: a few passages for one question."""

RETRIEVAL_REQUEST_OPTIONS = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=60), retry_policy=RETRIEVAL_RETRY
)
"""`retrieval.*` the API asks for (search, create, stats, delete), one per workflow."""

INGEST_BATCH_OPTIONS = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=30),
    heartbeat_timeout=timedelta(seconds=10),
    retry_policy=RETRIEVAL_RETRY,
)
"""`retrieval.ingest_batch`: index one batch of staged documents, heartbeating."""

REFRESH_INDEX_OPTIONS = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=30),
    # Rebuilding BM25 holds the GIL for seconds on a large collection: heartbeats can lag.
    heartbeat_timeout=timedelta(seconds=120),
    retry_policy=RETRIEVAL_RETRY,
)
"""`retrieval.refresh`: rebuild a collection's index once its documents are in."""

CLEAR_STAGED_OPTIONS = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=5), retry_policy=RETRIEVAL_RETRY
)
"""`retrieval.clear_staged`: drop an ingestion's staged documents."""


def model_call_options(deployment: Deployment) -> ActivityOptions:
    """`model.call` on `deployment`: its own timeout (plus slack) and attempts."""
    return ActivityOptions(
        start_to_close_timeout=timedelta(seconds=deployment.timeout_s + 5),
        heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT,
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=1),
            maximum_interval=timedelta(seconds=30),
            maximum_attempts=deployment.max_attempts,
        ),
    )


def tool_call_options(tool: ToolInfo) -> ActivityOptions:
    """`tool.<name>`: the timeout and retry policy the tool declares."""
    return ActivityOptions(
        start_to_close_timeout=timedelta(seconds=tool.timeout_s),
        heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT,
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=tool.retry_initial_interval_s),
            backoff_coefficient=tool.retry_backoff,
            maximum_attempts=tool.max_attempts,
        ),
    )
