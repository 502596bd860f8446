"""Routes over real provider SDKs: failover, cascades, budgets and the cost ledger.

The worker and API are real processes; the "providers" are `keel.testing.WireServer`,
which speaks the OpenAI and Anthropic wire protocols, so every call goes through the
official SDKs exactly as it would in production.
"""

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.client import Client

from keel.schemas.model import Usage as KeelUsage
from keel.schemas.routing import Price
from keel.settings import Settings
from keel.testing.recording import WireRequest
from keel.testing.replies import Reply, Usage
from keel.testing.server import WireServer
from keel.testing.stack import Stack, eventually, start_run, wait_status
from tests.conftest import CONFIDENT
from tests.replays import replayer

MINI = {"input": 0.15, "output": 0.6, "cached": 0.075}
HAIKU = {"input": 0.8, "output": 4.0}
OPENAI_USAGE = Usage(input_tokens=1200, output_tokens=80, cached_tokens=200)
ANTHROPIC_USAGE = Usage(input_tokens=900, output_tokens=60)


def _support_responder(confidence: float, anthropic: float | None = None) -> object:
    """Providers that classify as `account` and answer citing the first document.

    OpenAI's confidence comes from its logprobs, Anthropic's from a `Confidence:` line.
    """

    def respond(request: WireRequest) -> Reply:
        if request.protocol == "openai":
            usage, sure = OPENAI_USAGE, {"confidence": confidence}
        else:
            usage, sure = ANTHROPIC_USAGE, {}
        ids = re.findall(r'id="([^"]+)"', request.text)
        if not ids:
            return Reply(text="account", usage=usage, **sure)
        line = f"\nConfidence: {confidence if anthropic is None else anthropic}"
        return Reply(text=f"Click Forgot password [{ids[0]}].{line}", usage=usage, **sure)

    return respond


@pytest.fixture
async def wire() -> AsyncIterator[WireServer]:
    async with WireServer() as server:
        yield server


def _stack(make_stack, wire: WireServer, route: dict, **settings: str) -> Stack:  # type: ignore[no-untyped-def]
    deployments = {
        "mini": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "api_key_env": "OPENAI_API_KEY",
            "base_url": wire.openai_base_url,
            "price": MINI,
            "max_attempts": 2,
            "timeout_s": 1.5,
        },
        "haiku": {
            "provider": "anthropic",
            "model": "claude-3-5-haiku-latest",
            "api_key_env": "ANTHROPIC_API_KEY",
            "base_url": wire.anthropic_base_url,
            "price": HAIKU,
            "max_attempts": 2,
            "timeout_s": 5,
        },
    }
    return make_stack(
        KEEL_DEPLOYMENTS=json.dumps(deployments),
        KEEL_ROUTES=json.dumps({"default": route}),
        OPENAI_API_KEY="sk-test-openai-secret",
        ANTHROPIC_API_KEY="sk-ant-test-secret",
        **settings,
    )


async def _up(stack: Stack) -> httpx.AsyncClient:
    await stack.start_worker()
    await stack.start_api()
    return httpx.AsyncClient(base_url=stack.api_url, timeout=30)


def _cost(price: dict, usage: Usage) -> float:
    return Price(**price).cost(KeelUsage(**usage.model_dump()))


async def _model_calls(client: Client, run_id: str) -> list[tuple[str, str]]:
    """(summary, outcome) of every model.call activity in the run's history, in order."""
    history = await client.get_workflow_handle(run_id).fetch_history()
    summaries: dict[int, str] = {}
    calls = []
    for event in history.events:
        kind = event.WhichOneof("attributes")
        if kind == "activity_task_scheduled_event_attributes":
            if event.activity_task_scheduled_event_attributes.activity_type.name == "model.call":
                summaries[event.event_id] = json.loads(event.user_metadata.summary.data)
        for outcome in ("completed", "failed", "timed_out"):
            attrs = f"activity_task_{outcome}_event_attributes"
            if kind == attrs and getattr(event, attrs).scheduled_event_id in summaries:
                calls.append((summaries[getattr(event, attrs).scheduled_event_id], outcome))
    return calls


async def test_fallback_moves_on_after_a_rate_limit_and_bills_what_answered(
    make_stack, wire, temporal_client
):
    wire.script.responder = _support_responder(0.9)
    wire.push(Reply.rate_limited(60), protocol="openai")
    stack = _stack(make_stack, wire, {"strategy": "fallback", "candidates": ["mini", "haiku"]})
    async with await _up(stack) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        done = await wait_status(http, run_id, {"completed"})

    # classify: one 429 on OpenAI moves on at once (its Retry-After of 60 s is not waited
    # out), to Anthropic; OpenAI rests for those 60 s, so `answer` skips it without a call.
    assert await _model_calls(temporal_client, run_id) == [
        ("classify: openai/gpt-4o-mini", "failed"),
        ("classify: anthropic/claude-3-5-haiku-latest", "completed"),
        ("answer: openai/gpt-4o-mini", "failed"),
        ("answer: anthropic/claude-3-5-haiku-latest", "completed"),
    ]
    assert [r.protocol for r in wire.requests] == ["openai", "anthropic", "anthropic"]
    ledger = done["cost"]
    assert [(e["step"], e["provider"]) for e in ledger["entries"]] == [
        ("classify", "anthropic"),
        ("answer", "anthropic"),
        ("verify", "local"),  # the judge route is the keyless verifier unless configured
    ]
    expected = 2 * _cost(HAIKU, ANTHROPIC_USAGE)
    assert ledger["total_usd"] == pytest.approx(expected, abs=1e-12)

    async def cost_searchable() -> bool:
        async with httpx.AsyncClient(base_url=stack.api_url) as api:
            listed = (await api.get("/v1/runs")).json()["runs"]
        mine = [r for r in listed if r["run_id"] == run_id]
        return bool(mine) and mine[0]["cost_usd"] == pytest.approx(expected)

    await eventually(cost_searchable)
    assert done["result"]["citations"] and done["result"]["confidence"] == 0.9

    # The secrets never reached history, and a replay calls no provider.
    history = await temporal_client.get_workflow_handle(run_id).fetch_history()
    assert "secret" not in history.to_json()
    before = len(wire.requests)
    result = await replayer(Settings()).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None
    assert len(wire.requests) == before


async def test_a_refused_key_moves_a_fallback_route_on_and_opens_the_circuit(
    make_stack, wire, temporal_client
):
    wire.script.responder = _support_responder(0.9)
    wire.push(Reply.error(401, "bad key"), protocol="openai")
    stack = _stack(make_stack, wire, {"strategy": "fallback", "candidates": ["mini", "haiku"]})
    async with await _up(stack) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        done = await wait_status(http, run_id, {"completed"})
    # One attempt on the refused key (never retried), then the next candidate; the circuit
    # of `mini` is open from then on, so `answer` does not call it at all.
    assert [r.protocol for r in wire.requests] == ["openai", "anthropic", "anthropic"]
    assert await _model_calls(temporal_client, run_id) == [
        ("classify: openai/gpt-4o-mini", "failed"),
        ("classify: anthropic/claude-3-5-haiku-latest", "completed"),
        ("answer: openai/gpt-4o-mini", "failed"),
        ("answer: anthropic/claude-3-5-haiku-latest", "completed"),
    ]
    assert [e["provider"] for e in done["cost"]["entries"]] == ["anthropic", "anthropic", "local"]


async def test_a_bad_request_fails_fast_without_failover(make_stack, wire):
    wire.script.responder = _support_responder(0.9)
    wire.push(Reply.error(400, "malformed"), protocol="openai")
    stack = _stack(make_stack, wire, {"strategy": "fallback", "candidates": ["mini", "haiku"]})
    async with await _up(stack) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        failed = await wait_status(http, run_id, {"failed"})
    assert "BadRequest" in failed["error"] or "400" in failed["error"]
    assert [r.protocol for r in wire.requests] == ["openai"]  # one attempt, no failover


async def test_a_refused_key_on_a_fixed_route_fails_the_run(make_stack, wire):
    wire.script.responder = _support_responder(0.9)
    wire.push(Reply.error(401, "bad key"), protocol="openai")
    stack = _stack(make_stack, wire, {"candidates": ["mini", "haiku"]})
    async with await _up(stack) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        failed = await wait_status(http, run_id, {"failed"})
    assert "AuthenticationFailed" in failed["error"] or "401" in failed["error"]
    assert [r.protocol for r in wire.requests] == ["openai"]


async def test_a_missing_key_names_the_variable(make_stack, wire):
    wire.script.responder = _support_responder(0.9)
    stack = _stack(make_stack, wire, {"candidates": ["mini"]})
    stack.settings.pop("OPENAI_API_KEY")
    async with await _up(stack) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        failed = await wait_status(http, run_id, {"failed"})
    assert "OPENAI_API_KEY" in failed["error"]
    assert wire.requests == []


async def test_cascade_asks_the_strong_model_only_when_the_cheap_one_is_unsure(make_stack, wire):
    # Cheap: Anthropic, which reports its own confidence; strong: OpenAI (logprobs).
    wire.script.responder = _support_responder(0.95, anthropic=0.3)
    route = {"strategy": "cascade", "candidates": ["haiku", "mini"], "threshold": 0.7}
    stack = _stack(make_stack, wire, route)
    async with await _up(stack) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        done = await wait_status(http, run_id, {"completed", "awaiting_review"})
    steps = [(e["step"], e["provider"]) for e in done["cost"]["entries"]]
    # classify answers "account" with no confidence line: unsure, so it cascades too.
    assert steps == [
        ("classify", "anthropic"),
        ("classify", "openai"),
        ("answer", "anthropic"),
        ("answer", "openai"),
        ("verify", "local"),
    ]
    assert done["status"] == "completed"
    assert done["result"]["confidence"] == 0.95  # the strong model's, not the cheap one's


async def test_budget_escalates_and_approval_continues(make_stack, wire):
    wire.script.responder = _support_responder(0.9)
    stack = _stack(
        make_stack,
        wire,
        {"candidates": ["mini"]},
        KEEL_RUN_BUDGET_USD="0.0004",  # enough for classify, not for the answer with documents
    )
    async with await _up(stack) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        waiting = await wait_status(http, run_id, {"awaiting_review"})
        review = waiting["pending_review"]
        assert review["reason"] == "budget" and "budget" in review["proposed_answer"]
        assert [e["step"] for e in waiting["cost"]["entries"]] == ["classify"]
        decided = await http.post(
            f"/v1/reviews/{review['review_id']}/decision",
            json={"action": "approve", "action_hash": review["action_hash"]},
        )
        assert decided.status_code == 200, decided.text
        done = await wait_status(http, run_id, {"completed"})
    assert [e["step"] for e in done["cost"]["entries"]] == ["classify", "answer", "verify"]
    assert len(wire.requests) == 2  # classify was not asked again when the node resumed


async def test_budget_rejection_ends_the_run_rejected(make_stack, wire):
    wire.script.responder = _support_responder(0.9)
    stack = _stack(make_stack, wire, {"candidates": ["mini"]}, KEEL_RUN_BUDGET_USD="0.0004")
    async with await _up(stack) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        review = (await wait_status(http, run_id, {"awaiting_review"}))["pending_review"]
        await http.post(
            f"/v1/reviews/{review['review_id']}/decision",
            json={"action": "reject", "action_hash": review["action_hash"]},
        )
        done = await wait_status(http, run_id, {"rejected"})
    assert done["result"]["answer"] is None
    assert len(wire.requests) == 1


@pytest.mark.parametrize(
    "fault",
    [
        Reply.error(500),
        Reply.error(503),
        Reply.malformed(),
        Reply.slow(3.0),
    ],
    ids=["500", "503", "malformed-json", "timeout"],
)
async def test_transient_faults_are_retried_on_the_same_deployment(
    make_stack, wire, temporal_client, fault
):
    wire.script.responder = _support_responder(0.9)
    wire.push(fault, protocol="openai")
    stack = _stack(make_stack, wire, {"strategy": "fallback", "candidates": ["mini", "haiku"]})
    async with await _up(stack) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        done = await wait_status(http, run_id, {"completed"})
    # The second attempt of the same activity answered: no failover, one billed call.
    assert await _model_calls(temporal_client, run_id) == [
        ("classify: openai/gpt-4o-mini", "completed"),
        ("answer: openai/gpt-4o-mini", "completed"),
    ]
    history = await temporal_client.get_workflow_handle(run_id).fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.WhichOneof("attributes") == "activity_task_started_event_attributes"
    ]
    assert 2 in attempts
    assert [e["step"] for e in done["cost"]["entries"]] == ["classify", "answer", "verify"]


async def test_a_rate_limit_on_the_only_candidate_is_waited_out_on_it(
    make_stack, wire, temporal_client
):
    wire.script.responder = _support_responder(0.9)
    wire.push(Reply.rate_limited(0.2), protocol="openai")
    stack = _stack(make_stack, wire, {"candidates": ["mini"]})
    async with await _up(stack) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        await wait_status(http, run_id, {"completed"})
    # Nowhere else to go: the second attempt, after the Retry-After, answered.
    assert await _model_calls(temporal_client, run_id) == [
        ("classify: openai/gpt-4o-mini", "completed"),
        ("answer: openai/gpt-4o-mini", "completed"),
    ]
    assert [r.protocol for r in wire.requests] == ["openai"] * 3


async def test_budget_can_fail_the_run_instead(make_stack, wire):
    wire.script.responder = _support_responder(0.9)
    stack = _stack(
        make_stack,
        wire,
        {"candidates": ["mini"]},
        KEEL_RUN_BUDGET_USD="0.0004",
        KEEL_BUDGET_ACTION="fail",
    )
    async with await _up(stack) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        failed = await wait_status(http, run_id, {"failed"})
    assert failed["error"].startswith("BudgetExceeded:")
    assert len(wire.requests) == 1


async def test_an_open_circuit_skips_a_failing_provider_without_calling_it(
    make_stack, wire, temporal_client
):
    wire.script.responder = _support_responder(0.9)
    # OpenAI fails every call; the worker's breaker opens after three failures in a row
    # (KEEL_MODEL_CIRCUIT_FAILURES).
    wire.push(*[Reply.error(500) for _ in range(5)], protocol="openai")
    stack = _stack(make_stack, wire, {"strategy": "fallback", "candidates": ["mini", "haiku"]})
    async with await _up(stack) as http:
        first = (await start_run(http, CONFIDENT))["run_id"]
        await wait_status(http, first, {"completed"})
        second = (await start_run(http, CONFIDENT))["run_id"]
        await wait_status(http, second, {"completed"})
    openai_calls = [r for r in wire.requests if r.protocol == "openai"]
    assert len(openai_calls) == 3  # the rest were skipped without a request
    calls = await _model_calls(temporal_client, second)
    assert ("classify: openai/gpt-4o-mini", "failed") in calls
    assert calls[-1] == ("answer: anthropic/claude-3-5-haiku-latest", "completed")
    history = await temporal_client.get_workflow_handle(second).fetch_history()
    assert "CircuitOpen" in history.to_json()
