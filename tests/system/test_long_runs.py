"""Long agent loops continue as new before their history grows too large, and lose nothing.

The `assistant` runs a real tool-calling loop against the wire-protocol model server: the
scripted model asks for a calculation until it has seen `steps` results, then answers. The
1,000-step run is the example `tally` agent, whose state stays small (a conversation of
2,000 messages makes every model call carry all of them).
"""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHistory

from keel.settings import Settings
from keel.testing.recording import WireRequest
from keel.testing.replies import Reply
from keel.testing.server import WireServer
from keel.testing.stack import openai_route, wait_status
from tests.replays import replayer

PRICE = {"input": 1.0, "output": 2.0}
WARN_EVENTS = 10_240
WARN_BYTES = 10 * 1024 * 1024


def _loop(steps: int):  # type: ignore[no-untyped-def]
    """A model that calls the calculator until it has `steps` results, then answers."""

    def respond(request: WireRequest) -> Reply:
        seen = sum(1 for m in request.body["messages"] if m["role"] == "tool")
        if seen < steps:
            return Reply.tool_call("calculator", {"expression": f"{seen} + 1"})
        return Reply(text=f"done after {seen} calculations")

    return respond


@pytest.fixture
async def wire() -> AsyncIterator[WireServer]:
    async with WireServer() as server:
        yield server


async def _chain(client: Client, run_id: str) -> list[WorkflowHistory]:
    """Every execution of a run, first to last, following continue-as-new."""
    description = await client.get_workflow_handle(run_id).describe()
    execution: str | None = description.raw_description.workflow_execution_info.first_run_id
    histories = []
    while execution:
        history = await client.get_workflow_handle(run_id, run_id=execution).fetch_history()
        histories.append(history)
        last = history.events[-1]
        attrs = last.workflow_execution_continued_as_new_event_attributes
        execution = attrs.new_execution_run_id or None
    return histories


def _completed(histories: list[WorkflowHistory]) -> dict[str, int]:
    """How often each activity type completed, over the whole chain."""
    counts: dict[str, int] = {}
    for history in histories:
        names = {}
        for event in history.events:
            kind = event.WhichOneof("attributes")
            if kind == "activity_task_scheduled_event_attributes":
                names[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type
            elif kind == "activity_task_completed_event_attributes":
                scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
                name = names[scheduled].name
                counts[name] = counts.get(name, 0) + 1
    return counts


async def _events(http: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    found = []
    async with http.stream("GET", f"/v1/runs/{run_id}/events") as response:
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                found.append({"type": line.removeprefix("event: ")})
            elif line.startswith("data: "):
                found[-1].update(json.loads(line.removeprefix("data: ")))
    return found


async def _run_loop(
    make_stack: Any, wire: WireServer, client: Client, steps: int, timeout: float, **settings: str
) -> tuple[dict[str, Any], list[WorkflowHistory], list[dict[str, Any]]]:
    wire.script.responder = _loop(steps)
    stack = make_stack(**openai_route(wire, PRICE), **settings)
    await stack.start_worker()
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
        body = {"agent": "assistant", "input": {"message": "Count up.", "max_steps": steps + 1}}
        started = await http.post("/v1/runs", json=body)
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        done = await wait_status(http, run_id, {"completed"}, timeout=timeout)
        events = await _events(http, run_id)
        listed = (await http.get("/v1/runs", params={"agent": "assistant"})).json()["runs"]
    assert [r["run_id"] for r in listed].count(run_id) <= 1  # one run, however many executions
    return done, await _chain(client, run_id), events


def _assert_loop_completed_once(
    done: dict[str, Any], chain: list[WorkflowHistory], wire: WireServer, steps: int
) -> None:
    assert done["result"]["answer"] == f"done after {steps} calculations"
    assert len(chain) >= 2, "the run never continued as new"
    # Nothing ran twice, nothing was skipped, across every continuation.
    completed = _completed(chain)
    assert completed["tool.calculator"] == steps
    assert completed["model.call"] == steps + 1 == len(wire.requests)
    # The cost ledger was carried along.
    assert [e["step"] for e in done["cost"]["entries"]] == [f"model-{n}" for n in range(steps + 1)]


async def test_a_loop_continues_as_new_at_its_history_limit(make_stack, wire, temporal_client):
    steps, limit = 12, 60
    done, chain, events = await _run_loop(
        make_stack, wire, temporal_client, steps, timeout=240, KEEL_HISTORY_MAX_EVENTS=str(limit)
    )
    _assert_loop_completed_once(done, chain, wire, steps)
    # Each execution stopped at the first step boundary past the limit.
    assert all(len(h.events) < limit + 40 for h in chain), [len(h.events) for h in chain]
    assert len(chain) >= 3
    # Where a run stops to continue is deterministic: every execution replays.
    replaying = replayer(Settings())
    for history in chain:
        replayed = await replaying.replay_workflow(history, raise_on_replay_failure=False)
        assert replayed.replay_failure is None, replayed.replay_failure
    # The event stream follows the whole chain: one start, a continuation each, one end.
    kinds = [e["type"] for e in events]
    assert kinds.count("run.started") == 1 and kinds[0] == "run.started"
    assert kinds.count("run.continued") == len(chain) - 1
    assert kinds[-1] == "run.finished" and events[-1]["status"] == "completed"
    finished = [e for e in events if e["type"] == "step.finished" and e.get("step")]
    assert sum(e["step"] == "tool.calculator" for e in finished) == steps


@pytest.mark.slow
@pytest.mark.timeout(1_800)
async def test_a_thousand_step_loop_stays_within_temporals_limits(make_stack, temporal_client):
    """`tally` (examples/keel-example-tools) takes 1,000 steps, one tool call each."""
    stack = make_stack(KEEL_WORKER_MAX_CACHED_WORKFLOWS="100")
    await stack.start_worker()
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
        started = await http.post("/v1/runs", json={"agent": "tally", "input": {"count": 1000}})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        done = await wait_status(http, run_id, {"completed"}, timeout=1_700)
    assert done["result"]["answer"] == "counted to 1000 in 1000 steps"
    chain = await _chain(temporal_client, run_id)
    assert len(chain) >= 2, "the run never continued as new"
    assert _completed(chain)["tool.calculator"] == 1000
    for history in chain:
        assert len(history.events) < WARN_EVENTS
        assert sum(e.ByteSize() for e in history.events) < WARN_BYTES
