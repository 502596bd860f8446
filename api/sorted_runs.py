"""`GET /v1/runs?sort=...`: runs in the order of Keel's ledger, their state from Temporal.

The ledger (`keel.spend`) orders and pages the runs by cost or start time, and filters them
by agent, submitter and id; one visibility query on the page's ids then reads each run's
status (and filters by it). A status filter can drop runs from a batch, so a page is made
of up to `_ROUNDS` batches; it can be shorter than `limit` while `next_page_token` is set.
"""

import base64
import binascii
import json

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowExecution

from api.run_views import run_status, status_query
from keel.errors import BadPageToken
from keel.schemas.runs import AGENT_WORKFLOW, RunList, RunStatus, RunSummary
from keel.schemas.spend import RunSort
from keel.search_attributes import KEEL_SUBMITTER
from keel.settings import Settings
from keel.spend import LedgerRun, ledger_runs

__all__ = ["sorted_runs"]

_ROUNDS = 10
_TOKEN_PREFIX = "ledger"


async def sorted_runs(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    sort: RunSort,
    *,
    limit: int,
    page_token: str | None,
    agent: str | None,
    submitter: str | None,
    status: RunStatus | None,
    id_prefix: str | None,
) -> RunList:
    """A page of runs in `sort` order; pass `next_page_token` back for the next."""
    offset = _offset(page_token, sort)
    runs: list[RunSummary] = []
    more = True
    for _ in range(_ROUNDS):
        wanted = limit - len(runs)
        batch = await ledger_runs(
            session,
            sort,
            offset=offset,
            limit=wanted,
            agent=agent,
            submitter=submitter,
            id_prefix=id_prefix,
        )
        offset += len(batch)
        more = len(batch) == wanted
        runs += await _current(client, settings, batch, status)
        if len(runs) == limit or not more:
            break
    return RunList(runs=runs, next_page_token=_token(sort, offset) if more else None)


async def _current(
    client: Client, settings: Settings, batch: list[LedgerRun], status: RunStatus | None
) -> list[RunSummary]:
    """The runs of `batch` Temporal still has (in `status`), in the batch's order."""
    if not batch:
        return []
    ids = ", ".join(json.dumps(run.run_id) for run in batch)
    clauses = [
        f"WorkflowType = '{AGENT_WORKFLOW}'",
        "ExecutionStatus != 'ContinuedAsNew'",
        f"WorkflowId IN ({ids})",
    ]
    if status is not None:
        clauses.append(status_query(status))
    found: dict[str, WorkflowExecution] = {}
    async for execution in client.list_workflows(" AND ".join(clauses), page_size=len(batch)):
        found[execution.id] = execution
    return [_summary(run, found[run.run_id], settings) for run in batch if run.run_id in found]


def _summary(run: LedgerRun, execution: WorkflowExecution, settings: Settings) -> RunSummary:
    return RunSummary(
        run_id=run.run_id,
        agent=run.agent,
        status=run_status(execution),
        created_at=run.created_at,
        closed_at=execution.close_time,
        cost_usd=run.cost_usd,
        submitted_by=execution.typed_search_attributes.get(KEEL_SUBMITTER),
        ui_url=settings.run_ui_url(run.run_id),
    )


def _token(sort: RunSort, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}:{sort}:{offset}".encode()).decode()


def _offset(token: str | None, sort: RunSort) -> int:
    if token is None:
        return 0
    try:
        prefix, sorted_by, offset = base64.urlsafe_b64decode(token).decode().split(":")
        if prefix != _TOKEN_PREFIX or sorted_by != sort or not offset.isdigit():
            raise ValueError(token)
    except (binascii.Error, UnicodeDecodeError, ValueError) as err:
        raise BadPageToken(f"page_token is not one this API gave out for sort={sort}") from err
    return int(offset)
