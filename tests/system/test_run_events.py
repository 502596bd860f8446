"""`GET /v1/runs/{id}/events`: a run's progress as server-sent events, pushed as it happens."""

import asyncio
import json
from typing import Any

import httpx

from keel.testing.stack import start_run
from tests.conftest import CONFIDENT, UNSURE


async def _follow(http: httpx.AsyncClient, run_id: str, into: list[dict[str, Any]]) -> None:
    async with http.stream("GET", f"/v1/runs/{run_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                assert event["type"] == kind
                into.append(event)


async def test_events_follow_a_run_through_its_review(http):
    run_id = (await start_run(http, UNSURE))["run_id"]
    events: list[dict[str, Any]] = []
    follower = asyncio.create_task(_follow(http, run_id, events))
    for _ in range(300):
        if any(e.get("status") == "awaiting_review" for e in events):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"no awaiting_review event: {events}")
    assert not follower.done()  # still streaming while the run waits

    review = (await http.get(f"/v1/runs/{run_id}")).json()["pending_review"]
    await http.post(
        f"/v1/reviews/{review['review_id']}/decision",
        json={"action": "approve", "action_hash": review["action_hash"]},
    )
    await asyncio.wait_for(follower, 30)

    kinds = [e["type"] for e in events]
    assert kinds[0] == "run.started" and kinds[-1] == "run.finished"
    assert events[0]["detail"] == f"support: {UNSURE}"
    started = [(e["step"], e.get("detail")) for e in events if e["type"] == "step.started"]
    assert ("model.call", "classify: local/extractive-bm25") in started
    assert ("retrieval.search", f"retrieve: {UNSURE}") in started
    assert ("model.call", "answer: local/extractive-bm25") in started
    assert kinds.index("review.decided") > kinds.index("status")
    decided = next(e for e in events if e["type"] == "review.decided")
    assert decided["detail"] == f"approve {review['review_id']}"
    assert events[-1]["status"] == "completed"
    assert len([e for e in events if e["type"] == "step.finished"]) == len(started)


async def test_events_of_an_ended_run_replay_to_its_end(http):
    run_id = (await start_run(http, CONFIDENT))["run_id"]
    events: list[dict[str, Any]] = []
    await asyncio.wait_for(_follow(http, run_id, events), 30)
    assert events[-1] == {**events[-1], "type": "run.finished", "status": "completed"}
    again: list[dict[str, Any]] = []
    await asyncio.wait_for(_follow(http, run_id, again), 30)
    assert again == events


async def test_events_of_an_unknown_run_are_404(http):
    response = await http.get("/v1/runs/run-nope/events")
    assert response.status_code == 404
    assert response.json()["type"] == "urn:keel:problem:unknown-run"
