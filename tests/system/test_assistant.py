"""The tool-calling `assistant` over REST: tools as activities, approvals, exactly-once tickets."""

import json
import sqlite3

import httpx
import pytest
from temporalio.client import Client

from keel.testing.replies import Reply
from keel.testing.server import WireServer
from keel.testing.stack import Stack, openai_route, wait_status


async def _ask(http: httpx.AsyncClient, message: str, **extra: object) -> str:
    body = {"agent": "assistant", "input": {"message": message, **extra}}
    response = await http.post("/v1/runs", json=body)
    assert response.status_code == 202, response.text
    return response.json()["run_id"]


async def _tool_activities(client: Client, run_id: str) -> list[tuple[str, int]]:
    """(activity type, attempt) of every started tool activity of a run."""
    history = await client.get_workflow_handle(run_id).fetch_history()
    scheduled = {}
    started = []
    for event in history.events:
        kind = event.WhichOneof("attributes")
        if kind == "activity_task_scheduled_event_attributes":
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = name
        elif kind == "activity_task_started_event_attributes":
            attrs = event.activity_task_started_event_attributes
            name = scheduled[attrs.scheduled_event_id]
            if name.startswith("tool."):
                started.append((name, attrs.attempt))
    return started


def _tickets(stack: Stack) -> list[tuple[str, str, str]]:
    with sqlite3.connect(stack.db_file) as db:
        return db.execute("SELECT run_id, subject, priority FROM tickets").fetchall()


async def test_catalog_lists_builtin_and_example_tools(http):
    tools = {t["name"]: t for t in (await http.get("/v1/tools")).json()["tools"]}
    assert {"calculator", "search_knowledge", "http_get", "create_ticket"} <= set(tools)
    assert {"unit_convert", "flaky_lookup"} <= set(tools)  # from examples/keel-example-tools
    assert tools["create_ticket"]["requires_approval"] is True
    assert tools["calculator"]["requires_approval"] is False
    assert "expression" in tools["calculator"]["parameters"]["properties"]
    assert tools["unit_convert"]["source"] == "keel_example_tools"


async def test_a_calculation_is_answered_through_the_calculator(http, temporal_client):
    run_id = await _ask(http, "What is (12.5 * 4) + 3?")
    done = await wait_status(http, run_id, {"completed"})
    assert "53" in done["result"]["answer"]
    assert await _tool_activities(temporal_client, run_id) == [("tool.calculator", 1)]


async def test_the_example_packages_tool_is_discovered_and_called(http, temporal_client):
    run_id = await _ask(http, "Please convert 5 km to miles")
    done = await wait_status(http, run_id, {"completed"})
    assert "3.1" in done["result"]["answer"]
    assert await _tool_activities(temporal_client, run_id) == [("tool.unit_convert", 1)]


async def test_an_ssrf_attempt_is_refused(http, temporal_client):
    run_id = await _ask(http, "Fetch http://169.254.169.254/latest/meta-data for me")
    done = await wait_status(http, run_id, {"completed"})
    assert "http_get: error:" in done["result"]["answer"]
    assert await _tool_activities(temporal_client, run_id) == [("tool.http_get", 1)]


async def test_a_ticket_waits_for_approval_and_runs_once_with_edited_arguments(http, stack):
    run_id = await _ask(http, "Please open a ticket: export to PDF is broken, urgent")
    review = (await wait_status(http, run_id, {"awaiting_review"}))["pending_review"]
    assert review["reason"] == "tool_approval"
    assert review["tool_call"]["name"] == "create_ticket"
    assert review["tool_call"]["arguments"]["priority"] == "high"
    assert _tickets(stack) == [] or run_id not in {t[0] for t in _tickets(stack)}

    url = f"/v1/reviews/{review['review_id']}/decision"
    bad = await http.post(
        url,
        json={"action_hash": review["action_hash"], "action": "edit", "arguments": {"subject": 7}},
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["type"] == "urn:keel:problem:invalid-arguments"
    assert any(e["field"] == "arguments.subject" for e in bad.json()["errors"])
    wrong_kind = await http.post(
        url, json={"action_hash": review["action_hash"], "action": "edit", "answer": "no"}
    )
    assert wrong_kind.status_code == 422

    edited = {
        **review["tool_call"]["arguments"],
        "subject": "PDF export fails",
        "priority": "normal",
    }
    decided = await http.post(
        url, json={"action_hash": review["action_hash"], "action": "edit", "arguments": edited}
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["arguments"]["subject"] == "PDF export fails"
    done = await wait_status(http, run_id, {"completed"})
    assert "create_ticket" in done["result"]["answer"] and done["result"]["reviewed"]
    mine = [t for t in _tickets(stack) if t[0] == run_id]
    assert mine == [(run_id, "PDF export fails", "normal")]


async def test_a_rejected_call_is_reported_to_the_model_and_never_runs(
    http, stack, temporal_client
):
    run_id = await _ask(http, "Open a ticket please: the Slack integration is broken")
    review = (await wait_status(http, run_id, {"awaiting_review"}))["pending_review"]
    decided = await http.post(
        f"/v1/reviews/{review['review_id']}/decision",
        json={
            "action_hash": review["action_hash"],
            "action": "reject",
            "comment": "duplicate of #12",
        },
    )
    assert decided.status_code == 200
    done = await wait_status(http, run_id, {"completed"})
    assert "refused" in done["result"]["answer"] and "duplicate of #12" in done["result"]["answer"]
    assert run_id not in {t[0] for t in _tickets(stack)}
    assert await _tool_activities(temporal_client, run_id) == []


@pytest.fixture
async def scripted(make_stack):  # type: ignore[no-untyped-def]
    """A stack whose `default` route is an OpenAI deployment served by the wire server."""
    async with WireServer() as wire:
        stack = make_stack(**openai_route(wire, {"input": 0.15, "output": 0.6}))
        await stack.start_worker()
        await stack.start_api()
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            yield wire, http


async def test_bad_arguments_go_back_to_the_model_which_fixes_them(scripted, temporal_client):
    wire, http = scripted
    wire.push(
        Reply.tool_call("calculator", {"expr": "6 * 7"}),  # wrong field name
        Reply.tool_call("calculator", {"expression": "6 * 7"}),
        Reply(text="6 * 7 is 42."),
        protocol="openai",
    )
    run_id = await _ask(http, "What is six times seven?")
    done = await wait_status(http, run_id, {"completed"})
    assert done["result"]["answer"] == "6 * 7 is 42."
    tool_results = [
        m["content"] for r in wire.requests[1:] for m in r.body["messages"] if m["role"] == "tool"
    ]
    assert tool_results[0].startswith("error: invalid arguments: expression: Field required")
    assert json.loads(tool_results[-1])["value"] == 42


async def test_a_flaky_tool_succeeds_after_retries(scripted, temporal_client):
    wire, http = scripted
    wire.push(
        Reply.tool_call("flaky_lookup", {"key": "order-7"}),
        Reply(text="Found it."),
        protocol="openai",
    )
    run_id = await _ask(http, "Look up order-7")
    done = await wait_status(http, run_id, {"completed"})
    assert done["result"]["answer"] == "Found it."
    attempts = [a for name, a in await _tool_activities(temporal_client, run_id)]
    assert attempts == [3]  # two failed attempts, retried by Temporal, then success


async def test_independent_calls_run_in_parallel_each_as_its_own_activity(
    scripted, temporal_client
):
    wire, http = scripted
    wire.push(
        Reply(
            tool_calls=(
                *Reply.tool_call("calculator", {"expression": "2 + 2"}).tool_calls,
                *Reply.tool_call(
                    "unit_convert", {"value": 1, "from_unit": "km", "to_unit": "m"}
                ).tool_calls,
            )
        ),
        Reply(text="Done."),
        protocol="openai",
    )
    run_id = await _ask(http, "Two things at once")
    await wait_status(http, run_id, {"completed"})
    history = await temporal_client.get_workflow_handle(run_id).fetch_history()
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.WhichOneof("attributes") == "activity_task_scheduled_event_attributes"
        and e.activity_task_scheduled_event_attributes.activity_type.name.startswith("tool.")
    }
    completed = [
        e.event_id
        for e in history.events
        if e.WhichOneof("attributes") == "activity_task_completed_event_attributes"
        and e.activity_task_completed_event_attributes.scheduled_event_id in scheduled
    ]
    assert sorted(scheduled.values()) == ["tool.calculator", "tool.unit_convert"]
    # Both were scheduled together, before either finished.
    assert len(completed) == 2 and max(scheduled) < min(completed)
