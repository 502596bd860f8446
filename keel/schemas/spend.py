"""Spend read from Keel's ledger: how runs are sorted, and the usage report's shape."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["RunSort", "UsageBucket", "UsageGroup", "UsageReport", "UsageRow"]

RunSort = Literal["created_at", "-created_at", "cost_usd", "-cost_usd"]
"""An order of `GET /v1/runs` from the ledger: by start time or model spend; `-` for descending."""

UsageGroup = Literal["agent", "route", "deployment", "principal"]
"""What `GET /v1/usage` groups by; `principal` is the run's submitter."""

UsageBucket = Literal["hour", "day"]
"""The width of a usage report's time buckets (UTC), by the runs' start."""


class UsageRow(BaseModel):
    """The runs of one group (and bucket), with their model calls and escalations."""

    group: str | None = Field(
        description="The agent, route, deployment or principal; null for runs without one "
        "(a run that made no model call has no route or deployment)."
    )
    bucket_start: datetime | None = Field(
        default=None, description="The start of the bucket (UTC); null when not bucketed."
    )
    cost_usd: float = Field(description="Model spend of the calls in this row.")
    input_tokens: int
    output_tokens: int
    model_calls: int
    runs: int = Field(description="Runs started in the period that fall in this row.")
    escalated_runs: int = Field(description="Of those, the runs that asked a person.")
    escalation_rate: float = Field(description="escalated_runs / runs.")


class UsageReport(BaseModel):
    """Spend, tokens, runs and escalations of the runs started in [since, until)."""

    since: datetime
    until: datetime
    group_by: UsageGroup
    bucket: UsageBucket | None
    rows: list[UsageRow]
