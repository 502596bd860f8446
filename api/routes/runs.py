"""`/v1/runs`: start runs, read them, list them, cancel them."""

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse
from pydantic import JsonValue, ValidationError
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal, require
from api.deps import AuditDep, SessionDep, SettingsDep, TemporalClientDep
from api.problems import field_errors
from api.run_events import run_events, sse
from api.run_views import describe_run, run_summary, run_view, status_query
from keel.agents import AgentSpec, agent_catalog
from keel.audit import read_trail
from keel.errors import (
    BadPageToken,
    IdempotencyKeyReused,
    InvalidInput,
    RunNotRunning,
    UnknownAgent,
    UnknownRun,
)
from keel.schemas.audit import AuditTrail
from keel.schemas.continuation import HistoryLimits
from keel.schemas.runs import (
    AGENT_WORKFLOW,
    RunInput,
    RunList,
    RunRequest,
    RunStarted,
    RunStatus,
    RunView,
)
from keel.search_attributes import KEEL_AGENT, KEEL_STATUS, KEEL_SUBMITTER
from keel.settings import Settings

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

_REQUEST_HASH = "request_sha256"

# Submitters see only their own runs; reviewers read runs (a review's context) but do not
# cancel them; operators and admins see and cancel every run.
_Starter = Annotated[Principal, require("submitter")]
_Reader = Annotated[Principal, require("submitter", "reviewer", "operator")]
_Canceller = Annotated[Principal, require("submitter", "operator")]
_Auditor = Annotated[Principal, require("submitter", "operator")]


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def start_run(
    body: RunRequest,
    client: TemporalClientDep,
    settings: SettingsDep,
    audit: AuditDep,
    principal: _Starter,
) -> RunStarted:
    """Start a run; the same `idempotency_key` always answers with the same run.

    Idempotency keys belong to the key that sends them: two callers never share a run.
    """
    spec = _agent(body.agent)
    payload = _validated_input(spec, body.input)
    digest = _request_digest(spec.name, payload)
    run_id = _run_id(body.idempotency_key, principal.id)
    attributes = [
        SearchAttributePair(KEEL_AGENT, spec.name),
        SearchAttributePair(KEEL_STATUS, "running"),
    ]
    if principal.id is not None:
        attributes.append(SearchAttributePair(KEEL_SUBMITTER, principal.id))
    try:
        await client.start_workflow(
            AGENT_WORKFLOW,
            RunInput(
                agent=spec.name,
                input=payload,
                review_threshold=settings.review_threshold,
                review_timeout_s=settings.review_timeout_s,
                budget_usd=settings.escalation.budget_usd(spec.name, settings.run_budget_usd),
                budget_action=settings.budget_action,
                submitted_by=principal.id,
                policy=settings.escalation.for_agent(
                    spec.name,
                    threshold=settings.review_threshold,
                    timeout_s=settings.review_timeout_s,
                    claim_lease_s=settings.review_claim_lease_s,
                ),
                history=HistoryLimits(
                    max_events=settings.history_max_events, max_bytes=settings.history_max_bytes
                ),
            ),
            id=run_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=TypedSearchAttributes(attributes),
            memo={_REQUEST_HASH: digest},
            static_summary=f"{spec.name}: {_preview(payload, spec)}",
        )
    except WorkflowAlreadyStartedError:
        started = await _existing_run(client, run_id, digest, settings)
    else:
        started = RunStarted(
            run_id=run_id, agent=spec.name, status="running", ui_url=settings.run_ui_url(run_id)
        )
    # Also on a repeated start: a first attempt may have died between start and audit.
    await audit.append(
        run_id,
        f"{run_id}:started",
        "run.started",
        principal.id,
        {"agent": spec.name, "submitter": principal.name, _REQUEST_HASH: digest},
    )
    return started


@router.get("")
async def list_runs(
    client: TemporalClientDep,
    settings: SettingsDep,
    principal: _Reader,
    agent: str | None = None,
    status: RunStatus | None = None,
    page_token: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RunList:
    """Runs, newest first, found through Temporal visibility on Keel's search attributes."""
    # A run that continued as new is one run: only the latest execution of its chain counts.
    clauses = [f"WorkflowType = '{AGENT_WORKFLOW}'", "ExecutionStatus != 'ContinuedAsNew'"]
    if principal.role == "submitter":
        clauses.append(f"{KEEL_SUBMITTER.name} = {json.dumps(principal.id)}")
    if agent is not None:
        clauses.append(f"KeelAgent = {json.dumps(_agent(agent).name)}")
    if status is not None:
        clauses.append(status_query(status))
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
    run_id: str, client: TemporalClientDep, settings: SettingsDep, principal: _Reader
) -> RunView:
    """A run: status, current node, result or pending review."""
    if principal.role == "submitter":  # the others see every run: no extra look-up
        await _visible(client, run_id, principal)
    return await run_view(client, run_id, settings)


@router.post("/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_run(
    run_id: str,
    client: TemporalClientDep,
    settings: SettingsDep,
    audit: AuditDep,
    principal: _Canceller,
) -> RunView:
    """Ask a running run to stop; a pending review is closed as cancelled."""
    description = await _visible(client, run_id, principal)
    if description.status != WorkflowExecutionStatus.RUNNING:
        raise RunNotRunning(f"run {run_id!r} has already ended")
    await client.get_workflow_handle(run_id).cancel()
    await audit.append(run_id, f"{run_id}:cancel", "run.cancel_requested", principal.id, {})
    return await run_view(client, run_id, settings)


def _agent(name: str) -> AgentSpec:
    spec = agent_catalog().get(name)
    if spec is None:
        raise UnknownAgent(
            f"no agent {name!r}; agents: {', '.join(sorted(agent_catalog()))}",
        )
    return spec


def _validated_input(spec: AgentSpec, raw: Mapping[str, object] | str) -> dict[str, JsonValue]:
    data = {spec.text_field: raw} if isinstance(raw, str) else raw
    try:
        return spec.input_model.model_validate(data).model_dump(mode="json")
    except ValidationError as err:
        errors = field_errors(err.errors(), prefix=("input",))
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise InvalidInput(detail, errors=errors) from err


def _request_digest(agent: str, payload: Mapping[str, object]) -> str:
    canonical = json.dumps({"agent": agent, "input": payload}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _run_id(idempotency_key: str | None, submitter: str | None) -> str:
    if idempotency_key is None:
        return f"run-{uuid.uuid4().hex}"
    # A hash keeps any key usable as a workflow id, and equal keys give equal ids.
    scoped = idempotency_key if submitter is None else f"{submitter}\n{idempotency_key}"
    return f"run-{hashlib.sha256(scoped.encode()).hexdigest()[:32]}"


async def _visible(
    client: Client, run_id: str, principal: Principal
) -> WorkflowExecutionDescription:
    """The run, when `principal` may see it; 404 as for no run at all when not."""
    description = await describe_run(client, run_id)
    owner = description.typed_search_attributes.get(KEEL_SUBMITTER)
    if principal.role == "submitter" and owner != principal.id:
        raise UnknownRun(f"no run {run_id!r}")
    return description


async def _existing_run(client: Client, run_id: str, digest: str, settings: Settings) -> RunStarted:
    description = await describe_run(client, run_id)
    memo = await description.memo()
    if memo.get(_REQUEST_HASH) != digest:
        raise IdempotencyKeyReused(
            "this idempotency_key was used for a different request",
        )
    summary = run_summary(description, settings)
    return RunStarted(
        run_id=run_id, agent=summary.agent, status=summary.status, ui_url=summary.ui_url
    )


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


def _preview(payload: Mapping[str, object], spec: AgentSpec) -> str:
    text = str(payload.get(spec.text_field, payload))
    return text if len(text) <= 80 else text[:79] + "…"


@router.get(
    "/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def run_events_stream(
    run_id: str, client: TemporalClientDep, principal: _Reader
) -> StreamingResponse:
    """The run's progress as server-sent events, from its start until it ends."""
    await _visible(client, run_id, principal)  # 404 before the stream starts

    async def stream() -> AsyncIterator[bytes]:
        async for event in run_events(client, run_id):
            yield sse(event)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get("/{run_id}/audit")
async def run_audit(
    run_id: str, client: TemporalClientDep, session: SessionDep, principal: _Auditor
) -> AuditTrail:
    """The run's hash-chained audit trail, in chain order (`keel audit verify` checks it)."""
    await _visible(client, run_id, principal)
    return AuditTrail(run_id=run_id, entries=await read_trail(session, run_id))
