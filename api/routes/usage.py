"""`/v1/usage`: model spend, tokens, runs and escalation rate from Keel's ledger."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import Principal, require
from api.deps import SessionDep
from keel.errors import InvalidPeriod
from keel.schemas.spend import UsageBucket, UsageGroup, UsageReport
from keel.spend import usage_report

__all__ = ["get_usage", "router"]

router = APIRouter(prefix="/v1/usage", tags=["usage"])

_DEFAULT_PERIOD = timedelta(hours=24)


@router.get("")
async def get_usage(
    session: SessionDep,
    _: Annotated[Principal, require("operator")],
    group_by: Annotated[UsageGroup, Query(description="What each row is about.")] = "agent",
    since: Annotated[
        datetime | None,
        Query(description="Start of the period (ISO 8601 with an offset); until - 24 h."),
    ] = None,
    until: Annotated[
        datetime | None, Query(description="End of the period, excluded; now by default.")
    ] = None,
    bucket: Annotated[
        UsageBucket | None, Query(description="Split each group by the runs' start hour or day.")
    ] = None,
) -> UsageReport:
    """The runs started in [since, until): spend, tokens, runs and escalations per group."""
    for name, at in (("since", since), ("until", until)):
        if at is not None and at.utcoffset() is None:
            raise InvalidPeriod(f"{name} needs a UTC offset, e.g. 2026-01-31T00:00:00Z")
    end = until or datetime.now(UTC)
    start = since or end - _DEFAULT_PERIOD
    if start >= end:
        raise InvalidPeriod(f"since ({start.isoformat()}) is not before until ({end.isoformat()})")
    return await usage_report(session, start.astimezone(UTC), end.astimezone(UTC), group_by, bucket)
