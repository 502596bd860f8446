"""Spend from Keel's ledger on a real stack: runs sorted by cost and time, and `/v1/usage`.

The runs call a scripted OpenAI-compatible server whose replies carry known token counts,
so each run's cost is known; the ledger's figures must add up to the runs' own ledgers.
"""

from typing import Any

import httpx
import pytest

from keel.testing.replies import Reply, Usage
from keel.testing.server import WireServer
from keel.testing.stack import eventually, openai_route, start_run, wait_status
from tests.conftest import CONFIDENT

PROBLEM = "application/problem+json"


def _script(wire: WireServer, input_tokens: int) -> None:
    """Every call of the next run answers with `input_tokens` in and 100 out."""
    usage = Usage(input_tokens=input_tokens, output_tokens=100)
    wire.push(Reply(text="account", usage=usage, confidence=0.9), protocol="openai")
    wire.script.responder = lambda request: Reply(
        text="Click Forgot password.", usage=usage, confidence=0.9
    )


async def _runs(http: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Every run, page by page (two a page), in the order `params` asks for."""
    seen: list[dict[str, Any]] = []
    token: dict[str, str] = {}
    for _ in range(20):
        page = await http.get("/v1/runs", params={**params, "limit": 2, **token})
        assert page.status_code == 200, page.text
        seen += page.json()["runs"]
        if page.json()["next_page_token"] is None:
            return seen
        token = {"page_token": page.json()["next_page_token"]}
    raise AssertionError("the pages did not end")


def _problem(response: httpx.Response, code: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == f"urn:keel:problem:{code}"


@pytest.fixture
async def spent(make_stack) -> Any:  # type: ignore[no-untyped-def]
    """An API over three runs of different, known costs (some wait for a person)."""
    async with WireServer() as wire:
        stack = make_stack(**openai_route(wire))
        await stack.start_worker()
        await stack.start_api()
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            views: list[dict[str, Any]] = []
            for input_tokens in (3000, 1000, 2000):
                _script(wire, input_tokens)
                run_id = (await start_run(http, CONFIDENT))["run_id"]
                views.append(await wait_status(http, run_id, {"completed", "awaiting_review"}))
            yield http, views
            for view in views:
                await http.post(f"/v1/runs/{view['run_id']}/cancel")


async def test_runs_sort_by_cost_and_time_from_the_ledger(spent):
    http, views = spent
    cost = {v["run_id"]: v["cost"]["total_usd"] for v in views}
    assert len(set(cost.values())) == 3 and min(cost.values()) > 0

    async def listed() -> bool:
        return {r["run_id"] for r in await _runs(http, sort="cost_usd")} == set(cost)

    await eventually(listed)
    by_cost = await _runs(http, sort="-cost_usd")
    assert [r["run_id"] for r in by_cost] == sorted(cost, key=lambda r: -cost[r])
    assert [r["cost_usd"] for r in by_cost] == pytest.approx(sorted(cost.values(), reverse=True))
    assert [r["run_id"] for r in await _runs(http, sort="cost_usd")] == sorted(
        cost, key=lambda r: cost[r]
    )
    started = [v["run_id"] for v in views]
    assert [r["run_id"] for r in await _runs(http, sort="created_at")] == started
    assert [r["run_id"] for r in await _runs(http, sort="-created_at")] == started[::-1]
    # Filters as without a sort; the status comes from Temporal.
    statuses = {v["run_id"]: v["status"] for v in views}
    waiting = await _runs(http, sort="-cost_usd", status="awaiting_review")
    assert {r["run_id"] for r in waiting} == {r for r, s in statuses.items() if s != "completed"}
    assert waiting and {r["status"] for r in waiting} == {"awaiting_review"}
    assert await _runs(http, sort="cost_usd", agent="assistant") == []
    assert [r["run_id"] for r in await _runs(http, sort="cost_usd", id_prefix=started[0])] == [
        started[0]
    ]
    _problem(await http.get("/v1/runs", params={"sort": "price"}), "validation-error")
    other_sort = (await http.get("/v1/runs", params={"sort": "cost_usd", "limit": 1})).json()
    mixed = {"sort": "created_at", "page_token": other_sort["next_page_token"]}
    response = await http.get("/v1/runs", params=mixed)
    assert response.status_code == 400
    assert response.json()["type"] == "urn:keel:problem:bad-page-token"


async def test_usage_adds_up_to_the_runs_own_ledgers(spent):
    http, views = spent
    calls = [e for v in views for e in v["cost"]["entries"]]
    total = sum(e["cost_usd"] for e in calls)
    escalated = sum(v["status"] == "awaiting_review" for v in views)

    by_agent = (await http.get("/v1/usage")).json()
    assert by_agent["group_by"] == "agent" and by_agent["bucket"] is None
    [row] = by_agent["rows"]
    assert row["group"] == "support" and row["runs"] == 3 and row["escalated_runs"] == escalated
    assert escalated and row["escalation_rate"] == pytest.approx(escalated / 3)
    assert row["cost_usd"] == pytest.approx(total)
    assert row["model_calls"] == len(calls)
    assert row["input_tokens"] == sum(e["usage"]["input_tokens"] for e in calls)
    assert row["output_tokens"] == sum(e["usage"]["output_tokens"] for e in calls)

    for group in ("deployment", "route"):
        rows = (await http.get("/v1/usage", params={"group_by": group})).json()["rows"]
        assert sum(r["cost_usd"] for r in rows) == pytest.approx(total)
        assert sum(r["model_calls"] for r in rows) == len(calls)
    deployments = (await http.get("/v1/usage", params={"group_by": "deployment"})).json()
    gpt = next(r for r in deployments["rows"] if r["group"] == "gpt")
    assert gpt["runs"] == 3 and gpt["cost_usd"] == pytest.approx(total)
    [anyone] = (await http.get("/v1/usage", params={"group_by": "principal"})).json()["rows"]
    assert anyone["group"] is None and anyone["runs"] == 3  # an open API has no principals

    hourly = (await http.get("/v1/usage", params={"bucket": "hour"})).json()["rows"]
    assert sum(r["runs"] for r in hourly) == 3
    assert all(r["bucket_start"].endswith(":00:00Z") for r in hourly)
    later = {"since": "2100-01-01T00:00:00Z", "until": "2100-01-02T00:00:00Z"}
    assert (await http.get("/v1/usage", params=later)).json()["rows"] == []

    _problem(await http.get("/v1/usage", params={"group_by": "model"}), "validation-error")
    _problem(await http.get("/v1/usage", params={"bucket": "week"}), "validation-error")
    backwards = {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    _problem(await http.get("/v1/usage", params=backwards), "invalid-period")
    _problem(await http.get("/v1/usage", params={"since": "2026-01-01T00:00:00"}), "invalid-period")
