"""A run's progress as server-sent events, read from its Temporal history as it grows.

The API long-polls the history (`wait_new_event`), so a client gets each step as soon as
Temporal records it, without polling the API. Activities are the steps (their type and the
summary the workflow gave them); a local activity is recorded once it has ended, as a marker
that gives both its start and its end. Search-attribute upserts carry status and cost
changes; an accepted `decide` Update is a review decision. Payloads (summaries, the
decision) and failure messages are read through the client's data converter, which decrypts
them when payloads are encrypted.
"""

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.converter import DataConverter, decode_typed_search_attributes
from temporalio.exceptions import FailureError

from keel.schemas.runs import RunEvent, RunStatus
from keel.search_attributes import KEEL_COST_USD, KEEL_STATUS

__all__ = ["run_events", "sse"]

_LOCAL_ACTIVITY_MARKER = "core_local_activity"

_CLOSED: dict[str, RunStatus | None] = {
    "workflow_execution_completed_event_attributes": None,
    "workflow_execution_failed_event_attributes": "failed",
    "workflow_execution_timed_out_event_attributes": "failed",
    "workflow_execution_terminated_event_attributes": "failed",
    "workflow_execution_canceled_event_attributes": "cancelled",
}


async def run_events(client: Client, run_id: str) -> AsyncIterator[RunEvent]:
    """Every event of the run, from its start, until it ends.

    A run that continued as new is a chain of Temporal executions under one workflow id:
    the events follow it from the first execution to the last.
    """
    steps: dict[int, str] = {}
    status: RunStatus | None = None
    execution = await _first_execution(client, run_id)
    while True:
        history = client.get_workflow_handle(run_id, run_id=execution)
        execution = None
        async for event in history.fetch_history_events(wait_new_event=True):
            kind = event.WhichOneof("attributes") or ""
            at = event.event_time.ToDatetime(tzinfo=UTC)
            if kind == "workflow_execution_continued_as_new_event_attributes":
                attrs = event.workflow_execution_continued_as_new_event_attributes
                execution = attrs.new_execution_run_id
                detail = f"continued as new after {event.event_id} history events"
                yield RunEvent(type="run.continued", at=at, detail=detail)
                break
            if kind in _CLOSED:
                # A completed run ends `completed` or `rejected`: the last status it reported.
                final = _CLOSED[kind] or (status if status == "rejected" else "completed")
                yield RunEvent(type="run.finished", at=at, status=final)
                return
            for found in await _translate(client.data_converter, event, kind, at, steps):
                status = found.status or status
                yield found
        if execution is None:
            return


async def _first_execution(client: Client, run_id: str) -> str | None:
    """The first execution of the run's chain (None: the latest, when the server cannot say)."""
    description = await client.get_workflow_handle(run_id).describe()
    return description.raw_description.workflow_execution_info.first_run_id or None


async def _translate(
    converter: DataConverter, event: HistoryEvent, kind: str, at: datetime, steps: dict[int, str]
) -> list[RunEvent]:
    if kind == "marker_recorded_event_attributes":
        return await _local_activity(converter, event, at)
    found = await _translate_one(converter, event, kind, at, steps)
    return [] if found is None else [found]


async def _translate_one(
    converter: DataConverter, event: HistoryEvent, kind: str, at: datetime, steps: dict[int, str]
) -> RunEvent | None:
    match kind:
        case "workflow_execution_started_event_attributes":
            if event.workflow_execution_started_event_attributes.continued_execution_run_id:
                return None  # a continuation: the run started long before
            return RunEvent(type="run.started", at=at, detail=await _summary(converter, event))
        case "activity_task_scheduled_event_attributes":
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            steps[event.event_id] = name
            detail = await _summary(converter, event)
            return RunEvent(type="step.started", at=at, step=name, detail=detail)
        case "activity_task_completed_event_attributes":
            attrs = event.activity_task_completed_event_attributes
            name = steps.get(attrs.scheduled_event_id)
            return RunEvent(type="step.finished", at=at, step=name)
        case "activity_task_failed_event_attributes":
            attrs = event.activity_task_failed_event_attributes
            name = steps.get(attrs.scheduled_event_id)
            failure = await _failure_message(converter, attrs.failure)
            return RunEvent(type="step.failed", at=at, step=name, detail=failure)
        case "workflow_execution_update_accepted_event_attributes":
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if request.input.name != "decide":
                return None
            [decision] = await converter.decode(request.input.args.payloads[:1])
            detail = f"{decision.get('action')} {decision.get('review_id')}"
            return RunEvent(type="review.decided", at=at, detail=detail)
        case "upsert_workflow_search_attributes_event_attributes":
            attrs = event.upsert_workflow_search_attributes_event_attributes
            values = decode_typed_search_attributes(attrs.search_attributes)
            status, cost = values.get(KEEL_STATUS), values.get(KEEL_COST_USD)
            if status is None and cost is None:
                return None
            # The search attribute is a plain keyword: the model checks it is a `RunStatus`.
            fields = {"type": "status", "at": at, "status": status, "cost_usd": cost}
            return RunEvent.model_validate(fields)
        case _:
            return None


async def _local_activity(
    converter: DataConverter, event: HistoryEvent, at: datetime
) -> list[RunEvent]:
    """A local activity's start and end, from the marker recorded when it ended (`at`).

    The marker's `data` is the SDK core's own record (never encoded): its type and times.
    """
    marker = event.marker_recorded_event_attributes
    payloads: Sequence[Payload] = (
        marker.details["data"].payloads if "data" in marker.details else []
    )
    if marker.marker_name != _LOCAL_ACTIVITY_MARKER or not payloads:
        return []
    data = json.loads(payloads[0].data)
    name = data["activity_type"]
    started = RunEvent(
        type="step.started",
        at=_timestamp(data.get("original_schedule_time"), at),
        step=name,
        detail=await _summary(converter, event),
    )
    ended = _timestamp(data.get("complete_time"), at)
    if marker.HasField("failure"):
        failure = await _failure_message(converter, marker.failure)
        return [started, RunEvent(type="step.failed", at=ended, step=name, detail=failure)]
    return [started, RunEvent(type="step.finished", at=ended, step=name)]


def _timestamp(value: dict[str, int] | None, otherwise: datetime) -> datetime:
    if not value:
        return otherwise
    return datetime.fromtimestamp(value.get("seconds", 0) + value.get("nanos", 0) / 1e9, UTC)


async def _summary(converter: DataConverter, event: HistoryEvent) -> str | None:
    if not event.user_metadata.HasField("summary"):
        return None
    [summary] = await converter.decode([event.user_metadata.summary], [str])
    return summary


async def _failure_message(converter: DataConverter, failure: Failure) -> str:
    """What failed: the failure's cause when it has one (an activity's own error)."""
    copy = Failure()
    copy.CopyFrom(failure)
    error = await converter.decode_failure(copy)
    return (error.__cause__ and _message(error.__cause__)) or _message(error)


def _message(error: BaseException) -> str:
    return error.message if isinstance(error, FailureError) else str(error)


def sse(event: RunEvent) -> bytes:
    """One server-sent event."""
    return f"event: {event.type}\ndata: {event.model_dump_json(exclude_none=True)}\n\n".encode()
