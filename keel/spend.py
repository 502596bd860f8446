"""Spend from Keel's own ledger: the audit trail's `run.started` and `model.call` entries.

The API writes `run.started` (agent, submitting principal, time) for every run it starts;
the worker writes `model.call` (deployment, route, tokens, cost) for every answered model
call, once per activity whatever its retries. Temporal's visibility cannot order runs by
a search attribute on every store (the dev server's SQLite and SQL visibility cannot), so
runs are sorted and reported from these rows instead.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, asc, desc, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.schemas.spend import RunSort, UsageBucket, UsageGroup, UsageReport, UsageRow
from keel.tables import AuditRow

__all__ = ["LedgerRun", "ledger_runs", "usage_report"]

_STARTED, _CALL, _ESCALATED = "run.started", "model.call", "review.opened"


@dataclass(frozen=True)
class LedgerRun:
    """A run as the ledger knows it."""

    run_id: str
    agent: str
    created_at: datetime
    cost_usd: float


def _data(key: str) -> Any:
    return col(AuditRow.data)[key]


async def ledger_runs(
    session: AsyncSession,
    sort: RunSort,
    *,
    offset: int,
    limit: int,
    agent: str | None = None,
    submitter: str | None = None,
    id_prefix: str | None = None,
) -> list[LedgerRun]:
    """Runs in `sort` order (ties by run id), from `offset`, at most `limit` of them."""
    spend = (
        select(
            AuditRow.run_id,
            func.sum(_data("cost_usd").as_float()).label("cost_usd"),
        )
        .where(col(AuditRow.kind) == _CALL)
        .group_by(col(AuditRow.run_id))
        .subquery()
    )
    cost = func.coalesce(spend.c.cost_usd, 0.0)
    key: Any = cost if sort.endswith("cost_usd") else AuditRow.at
    run_id = col(AuditRow.run_id)
    direction = desc if sort.startswith("-") else asc
    query = (
        select(run_id, _data("agent").as_string(), col(AuditRow.at), cost)
        .outerjoin(spend, spend.c.run_id == run_id)
        .where(col(AuditRow.kind) == _STARTED)
    )
    if agent is not None:
        query = query.where(_data("agent").as_string() == agent)
    if submitter is not None:
        query = query.where(col(AuditRow.actor) == submitter)
    if id_prefix is not None:
        query = query.where(run_id.startswith(id_prefix, autoescape=True))
    rows = await session.exec(
        query.order_by(direction(key), direction(run_id)).offset(offset).limit(limit)
    )
    return [LedgerRun(r[0], r[1] or "", r[2], float(r[3])) for r in rows]


@dataclass
class _Tally:
    runs: set[str] = field(default_factory=lambda: set[str]())
    escalated: set[str] = field(default_factory=lambda: set[str]())
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0


@dataclass(frozen=True)
class _Run:
    agent: str | None
    principal: str | None
    bucket: datetime | None


async def usage_report(
    session: AsyncSession,
    since: datetime,
    until: datetime,
    group_by: UsageGroup,
    bucket: UsageBucket | None = None,
) -> UsageReport:
    """Spend, tokens, runs and escalation rate of the runs started in [since, until).

    A run counts in the bucket of its start, with all its model calls. By agent or principal
    a run is in one group; by route or deployment it is in each group it called (and in the
    null group when it made no call), with only that group's calls.
    """
    started = (
        select(AuditRow.run_id)
        .where(col(AuditRow.kind) == _STARTED)
        .where(col(AuditRow.at) >= since, col(AuditRow.at) < until)
    )
    runs: dict[str, _Run] = {}
    for row in await session.exec(select(AuditRow).where(*_of(started, _STARTED))):
        agent = row.data.get("agent")
        runs[row.run_id] = _Run(
            agent if isinstance(agent, str) else None, row.actor, _bucket(row.at, bucket)
        )
    escalated = set(await session.exec(select(AuditRow.run_id).where(*_of(started, _ESCALATED))))
    tallies: defaultdict[tuple[str | None, datetime | None], _Tally] = defaultdict(_Tally)
    called: set[str] = set()
    for call in await session.exec(select(AuditRow).where(*_of(started, _CALL))):
        run, data = runs.get(call.run_id), call.data
        if run is None:  # started after the runs were read: not in this report
            continue
        tally = tallies[(_group(group_by, run, data), run.bucket)]
        tally.runs.add(call.run_id)
        tally.cost_usd += float(data.get("cost_usd", 0.0))
        tally.input_tokens += int(data.get("input_tokens", 0))
        tally.output_tokens += int(data.get("output_tokens", 0))
        tally.model_calls += 1
        called.add(call.run_id)
    for run_id, run in runs.items():
        if group_by in ("agent", "principal") or run_id not in called:
            tallies[(_group(group_by, run, {}), run.bucket)].runs.add(run_id)
    for tally in tallies.values():
        tally.escalated = tally.runs & escalated
    rows = [_row(group, start, tally) for (group, start), tally in tallies.items()]
    rows.sort(key=lambda r: (r.bucket_start or since, -r.cost_usd, r.group or ""))
    return UsageReport(since=since, until=until, group_by=group_by, bucket=bucket, rows=rows)


def _of(started: Any, kind: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The entries of `kind` of the runs `started` selects."""
    return col(AuditRow.kind) == kind, col(AuditRow.run_id).in_(started)


def _group(group_by: UsageGroup, run: _Run, call: dict[str, Any]) -> str | None:
    match group_by:
        case "agent":
            return run.agent
        case "principal":
            return run.principal
        case "route" | "deployment":
            value = call.get(group_by)
            return value if isinstance(value, str) else None


def _row(group: str | None, start: datetime | None, tally: _Tally) -> UsageRow:
    runs, escalated = len(tally.runs), len(tally.escalated)
    return UsageRow(
        group=group,
        bucket_start=start,
        cost_usd=tally.cost_usd,
        input_tokens=tally.input_tokens,
        output_tokens=tally.output_tokens,
        model_calls=tally.model_calls,
        runs=runs,
        escalated_runs=escalated,
        escalation_rate=escalated / runs if runs else 0.0,
    )


def _bucket(at: datetime, bucket: UsageBucket | None) -> datetime | None:
    match bucket:
        case None:
            return None
        case "hour":
            return at.replace(minute=0, second=0, microsecond=0)
        case "day":
            return at.replace(hour=0, minute=0, second=0, microsecond=0)
