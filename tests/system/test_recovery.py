"""A worker killed mid-call: a worker standing by takes the run over, and bills nothing twice."""

import asyncio
import json
import signal

import httpx
from temporalio.client import Client

from keel.testing.replies import Usage
from keel.testing.server import WireServer
from keel.testing.stack import hang_the_answer, openai_route, start_run, wait_status
from tests.conftest import CONFIDENT


async def _started_by(client: Client, run_id: str, activity: str) -> list[tuple[int, str]]:
    """(attempt, worker identity) of each completed `activity` of a run."""
    history = await client.get_workflow_handle(run_id).fetch_history()
    events = {e.event_id: e for e in history.events}
    found = []
    for event in history.events:
        if event.WhichOneof("attributes") != "activity_task_completed_event_attributes":
            continue
        attrs = event.activity_task_completed_event_attributes
        scheduled = events[attrs.scheduled_event_id].activity_task_scheduled_event_attributes
        if scheduled.activity_type.name == activity:
            started = events[attrs.started_event_id].activity_task_started_event_attributes
            found.append((started.attempt, started.identity))
    return found


async def test_a_standby_worker_takes_over_a_call_whose_worker_was_killed(
    make_stack, temporal_client
):
    usage = Usage(input_tokens=1000, output_tokens=100)
    async with WireServer() as wire:
        hang_the_answer(wire, usage, 300.0)  # far longer than the test waits
        stack = make_stack(**openai_route(wire, timeout_s=300))
        doomed = await stack.start_worker()
        await stack.start_api()
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            run_id = (await start_run(http, CONFIDENT))["run_id"]
            for _ in range(600):  # until the answer call hangs at the provider
                if len(wire.requests) == 2:
                    break
                await asyncio.sleep(0.05)
            standby = await stack.start_worker()
            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
            # Long before the call's 300 s timeout: the heartbeats stopped. (The answer cites
            # no article, so the run may stop for review after it: it went on all the same.)
            done = await wait_status(http, run_id, {"completed", "awaiting_review"}, timeout=90)

    went_on = done["result"] if done["status"] == "completed" else done["pending_review"]
    assert "Click Forgot password." in json.dumps(went_on)
    assert len(wire.requests) == 3  # the lost call was asked again once
    assert [e["step"] for e in done["cost"]["entries"]] == ["classify", "answer", "verify"]
    answered = await _started_by(temporal_client, run_id, "model.call")
    assert [attempt for attempt, _ in answered] == [1, 2]
    assert answered[1][1].startswith(f"{standby.pid}@")  # the standby ran the retry
