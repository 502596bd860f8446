"""`flaky_lookup`: a tool that fails on purpose, to watch Temporal retry it.

Its first two attempts raise a plain `RuntimeError`, which Keel does not turn into a
message for the model: the attempt fails, and Temporal schedules the next one after the
retry policy's interval. The third attempt succeeds. In the Temporal UI the run's
`tool.flaky_lookup` activity shows attempt 3 and the two failures; the run itself never
notices.
"""

from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.common import RetryPolicy

from tools.registry import tool

__all__ = ["FlakyLookupArgs", "FlakyLookupResult", "flaky_lookup"]

_FAILING_ATTEMPTS = 2


class FlakyLookupArgs(BaseModel):
    """What to look up."""

    key: str = Field(min_length=1, max_length=100)


class FlakyLookupResult(BaseModel):
    """The record found, and the attempt that found it."""

    key: str
    record: dict[str, str]
    attempt: int


@tool(
    idempotent=True,
    timeout=timedelta(seconds=5),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=0.2), backoff_coefficient=2.0, maximum_attempts=5
    ),
)
async def flaky_lookup(args: FlakyLookupArgs) -> FlakyLookupResult:
    """Look up a record by key (a demonstration tool).

    It fails its first two attempts on purpose, to show Temporal retrying a failed
    activity; the third attempt returns a fixed record. The failures are retried
    automatically: just call it once.
    """
    attempt = activity.info().attempt
    if attempt <= _FAILING_ATTEMPTS:
        raise RuntimeError(f"flaky_lookup fails attempt {attempt} on purpose (demonstration)")
    return FlakyLookupResult(
        key=args.key, record={"status": "active", "owner": "example"}, attempt=attempt
    )
