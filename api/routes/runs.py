"""`/v1/runs`: start runs, read them, list them, cancel them."""

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal, require
from api.deps import AuditDep, RunClientDep, SessionDep, SettingsDep, TemporalClientDep
from api.problems import field_errors
from api.run_events import run_events, sse
from api.run_views import describe_run, run_summary, run_view, status_query
from api.sorted_runs import sorted_runs
from keel.admission import admit
from keel.agents import AgentSpec, agent_catalog
from keel.audit import read_trail
from keel.audit_anchor import anchor_of, read_checkpoint, verify_run
from keel.errors import (
    BadPageToken,
    IdempotencyKeyReused,
    InvalidInput,
    RunNotRunning,
    UnknownAgent,
    UnknownRun,
)
from keel.run_client import REQUEST_DIGEST, RunClient
from keel.schemas.audit import AuditTrail
from keel.schemas.runs import AGENT_WORKFLOW, RunList, RunRequest, RunStarted, RunStatus, RunView
from keel.schemas.spend import RunSort
from keel.search_attributes import KEEL_SUBMITTER

__all__ = [
    "cancel_run",
    "get_run",
    "list_runs",
    "router",
    "run_audit",
    "run_events_stream",
    "start_run",
]

router = APIRouter(prefix="/v1/runs", tags=["runs"])

# Submitters see only their own runs; reviewers read runs (a review's context) but do not
# cancel them; operators and admins see and cancel every run.
_Starter = Annotated[Principal, require("submitter")]
_Reader = Annotated[Principal, require("submitter", "reviewer", "operator")]
_Canceller = Annotated[Principal, require("submitter", "operator")]
_Auditor = Annotated[Principal, require("submitter", "operator")]


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def start_run(
    body: RunRequest,
    runs: RunClientDep,
    settings: SettingsDep,
    audit: AuditDep,
    principal: _Starter,
) -> RunStarted:
    """Start a run; the same `idempotency_key` always answers with the same run.

    Idempotency keys belong to the key that sends them: two callers never share a run.
    """
    spec = _agent(body.agent)
    try:
        admission = admit(
            settings,
            spec,
            body.input,
            idempotency_key=body.idempotency_key,
            submitter=principal.id,
        )
    except ValidationError as err:
        errors = field_errors(err.errors(), prefix=("input",))
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise InvalidInput(detail, errors=errors) from err
    run_id = admission.run_id
    start = await runs.start(admission, settings.task_queue)
    if not start.same_request:
        raise IdempotencyKeyReused("this idempotency_key was used for a different request")
    if start.started:
        started = RunStarted(
            run_id=run_id, agent=spec.name, status="running", ui_url=settings.run_ui_url(run_id)
        )
    else:
        summary = run_summary(await describe_run(runs, run_id), settings)
        started = RunStarted(
            run_id=run_id, agent=summary.agent, status=summary.status, ui_url=summary.ui_url
        )
    # Also on a repeated start: a first attempt may have died between start and audit.
    await audit.append(
        run_id,
        f"{run_id}:started",
        "run.started",
        principal.id,
        {
            "agent": spec.name,
            "submitter": principal.name,
            "key": principal.key_id,
            REQUEST_DIGEST: admission.request_digest,
        },
    )
    return started


@router.get("")
async def list_runs(
    client: TemporalClientDep,
    session: SessionDep,
    settings: SettingsDep,
    principal: _Reader,
    agent: str | None = None,
    status: RunStatus | None = None,
    id_prefix: Annotated[
        str | None,
        Query(
            pattern=r"^[A-Za-z0-9_.-]{1,200}$",
            description="Only runs whose id starts with this (the CLI's short ids).",
        ),
    ] = None,
    page_token: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    sort: Annotated[
        RunSort | None,
        Query(
            description="Order by Keel's ledger: `cost_usd` (model spend) or `created_at`; "
            "`-` for descending. Without it, newest first from Temporal visibility.",
        ),
    ] = None,
) -> RunList:
    """Runs, newest first, found through Temporal visibility on Keel's search attributes.

    With `sort`, in the ledger's order by cost or start time (`api.sorted_runs`).
    """
    if sort is not None:
        return await sorted_runs(
            session,
            client,
            settings,
            sort,
            limit=limit,
            page_token=page_token,
            agent=None if agent is None else _agent(agent).name,
            submitter=principal.id if principal.role == "submitter" else None,
            status=status,
            id_prefix=id_prefix,
        )
    # A run that continued as new is one run: only the latest execution of its chain counts.
    clauses = [f"WorkflowType = '{AGENT_WORKFLOW}'", "ExecutionStatus != 'ContinuedAsNew'"]
    if principal.role == "submitter":
        clauses.append(f"{KEEL_SUBMITTER.name} = {json.dumps(principal.id)}")
    if agent is not None:
        clauses.append(f"KeelAgent = {json.dumps(_agent(agent).name)}")
    if status is not None:
        clauses.append(status_query(status))
    if id_prefix is not None:
        clauses.append(f"WorkflowId STARTS_WITH {json.dumps(id_prefix)}")
    iterator = client.list_workflows(
        " AND ".join(clauses), page_size=limit, next_page_token=_decode_token(page_token)
    )
    try:
        await iterator.fetch_next_page()
    except RPCError as err:
        # The server cannot parse a token it did not make (the dev server says UNKNOWN).
        malformed = err.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.UNKNOWN)
        if malformed and page_token is not None:
            raise _bad_token() from err
        raise
    token = iterator.next_page_token
    return RunList(
        runs=[run_summary(execution, settings) for execution in iterator.current_page or []],
        next_page_token=base64.urlsafe_b64encode(token).decode() if token else None,
    )


@router.get("/{run_id}")
async def get_run(
    run_id: str, runs: RunClientDep, settings: SettingsDep, principal: _Reader
) -> RunView:
    """A run: status, current node, result or pending review."""
    if principal.role == "submitter":  # the others see every run: no extra look-up
        await _visible(runs, run_id, principal)
    return await run_view(runs, run_id, settings)


@router.post("/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_run(
    run_id: str,
    runs: RunClientDep,
    settings: SettingsDep,
    audit: AuditDep,
    principal: _Canceller,
) -> RunView:
    """Ask a running run to stop; a pending review is closed as cancelled."""
    description = await _visible(runs, run_id, principal)
    if description.status != WorkflowExecutionStatus.RUNNING:
        raise RunNotRunning(f"run {run_id!r} has already ended")
    await runs.cancel(run_id)
    key = {"key": principal.key_id}
    await audit.append(run_id, f"{run_id}:cancel", "run.cancel_requested", principal.id, key)
    return await run_view(runs, run_id, settings)


def _agent(name: str) -> AgentSpec:
    spec = agent_catalog().get(name)
    if spec is None:
        raise UnknownAgent(
            f"no agent {name!r}; agents: {', '.join(sorted(agent_catalog()))}",
        )
    return spec


async def _visible(
    runs: RunClient, run_id: str, principal: Principal
) -> WorkflowExecutionDescription:
    """The run, when `principal` may see it; 404 as for no run at all when not."""
    description = await describe_run(runs, run_id)
    owner = description.typed_search_attributes.get(KEEL_SUBMITTER)
    if principal.role == "submitter" and owner != principal.id:
        raise UnknownRun(f"no run {run_id!r}")
    return description


def _decode_token(token: str | None) -> bytes | None:
    if token is None:
        return None
    try:
        decoded = base64.b64decode(token.encode(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as err:
        raise _bad_token() from err
    if not decoded:
        raise _bad_token()
    return decoded


def _bad_token() -> BadPageToken:
    return BadPageToken("page_token is not one this API gave out")


@router.get(
    "/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def run_events_stream(
    run_id: str, runs: RunClientDep, principal: _Reader
) -> StreamingResponse:
    """The run's progress as server-sent events, from its start until it ends."""
    await _visible(runs, run_id, principal)  # 404 before the stream starts

    async def stream() -> AsyncIterator[bytes]:
        async for event in run_events(runs.client, run_id):
            yield sse(event)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get("/{run_id}/audit")
async def run_audit(
    run_id: str, runs: RunClientDep, session: SessionDep, audit: AuditDep, principal: _Auditor
) -> AuditTrail:
    """The run's hash-chained audit trail, in chain order, verified as by `keel audit verify`.

    The chain is recomputed and compared with the anchor Temporal's history of the run holds
    and with the run's signed checkpoint.
    """
    anchor = await anchor_of(await _visible(runs, run_id, principal))
    entries = await read_trail(session, run_id)
    checkpoint = await asyncio.to_thread(read_checkpoint, audit.checkpoints, run_id)
    verification = verify_run(run_id, entries, anchor, checkpoint)
    return AuditTrail(run_id=run_id, entries=entries, verification=verification)
