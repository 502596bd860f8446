"""Review queues over REST: evidence and action hashes, guards, claims, bound decisions.

Every rule is checked twice where it matters: through the API (409 with a stable problem
type) and by calling the workflow's Updates directly with a Temporal client, which shows
that a stale, foreign-claimed or repeated decision is refused before it reaches history.
"""

import asyncio
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowUpdateFailedError

from keel.schemas.reviews import ClaimInput, DecisionInput, ReviewRequest, action_hash
from keel.testing.stack import start_run, wait_status
from tests.conftest import UNSURE
from tests.system.secured import Secured
from workflows.agent import AgentWorkflow

PII_QUESTION = "How do I reset my password? My address is ana.lopez@example.com"


async def _review(http: httpx.AsyncClient, question: str = UNSURE) -> dict[str, Any]:
    run = await start_run(http, question)
    view = await wait_status(http, run["run_id"], {"awaiting_review"})
    review = (await http.get(f"/v1/reviews/{view['pending_review']['review_id']}")).json()
    assert review["action_hash"] == view["pending_review"]["action_hash"]
    return review


def _problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == f"urn:keel:problem:{code}"


async def _decide(http: httpx.AsyncClient, review: dict[str, Any], **body: Any) -> httpx.Response:
    payload = {"action": "approve", "action_hash": review["action_hash"], **body}
    return await http.post(f"/v1/reviews/{review['id']}/decision", json=payload)


async def _updates_accepted(client: Client, run_id: str) -> int:
    history = await client.get_workflow_handle(run_id).fetch_history()
    return sum(
        e.HasField("workflow_execution_update_accepted_event_attributes") for e in history.events
    )


async def test_a_review_shows_its_queue_reason_evidence_and_action_hash(http):
    review = await _review(http)
    assert review["queue"] == "default" and review["status"] == "pending"
    assert review["reason"] in {"off_topic", "low_confidence"} and review["node"] == "check"
    assert review["question"] == UNSURE and review["passages"] and review["confidence"] is not None
    assert review["claim"] is None and review["deadline_path"] is None
    request = ReviewRequest(
        reason=review["reason"], question=UNSURE, proposed_answer=review["proposed_answer"]
    )
    assert review["action_hash"] == action_hash(review["id"], request)


async def test_pii_in_the_question_escalates_with_the_finding_as_evidence(http):
    review = await _review(http, PII_QUESTION)
    assert review["reason"] == "pii"
    found = [(f["kind"], f["field"], f["label"]) for f in review["findings"]]
    assert ("pii", "question", "EMAIL_ADDRESS") in found
    start, end = next((f["start"], f["end"]) for f in review["findings"] if f["kind"] == "pii")
    assert PII_QUESTION[start:end] == "ana.lopez@example.com"
    listed = (
        await http.get("/v1/reviews", params={"reason": "pii", "run_id": review["run_id"]})
    ).json()
    assert [r["id"] for r in listed["reviews"]] == [review["id"]]


async def test_a_decision_on_another_action_is_refused_as_stale(http, temporal_client):
    review = await _review(http)
    _problem(await _decide(http, review, action_hash="0" * 64), 409, "stale-action")
    missing = {"action": "approve"}
    _problem(
        await http.post(f"/v1/reviews/{review['id']}/decision", json=missing),
        422,
        "validation-error",
    )

    handle = temporal_client.get_workflow_handle_for(AgentWorkflow.run, review["run_id"])
    for forged in (None, "f" * 64):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                AgentWorkflow.decide,
                DecisionInput(review_id=review["id"], action="approve", action_hash=forged),
            )
        assert refused.value.cause.type == "StaleAction"
    assert await _updates_accepted(temporal_client, review["run_id"]) == 0
    assert (await http.get(f"/v1/reviews/{review['id']}")).json()["status"] == "pending"

    assert (await _decide(http, review)).status_code == 200
    _problem(await _decide(http, review, action="reject"), 409, "review-not-pending")
    assert await _updates_accepted(temporal_client, review["run_id"]) == 1
    done = await wait_status(http, review["run_id"], {"completed"})
    assert done["result"]["answer"] == review["proposed_answer"]


async def test_a_claim_is_a_lease_only_its_holder_decides_or_releases_under(http, temporal_client):
    review = await _review(http)
    url = f"/v1/reviews/{review['id']}/claim"
    _problem(await http.post(url, json={}), 422, "validation-error")  # open mode: name yourself

    claimed = await http.post(url, json={"reviewer": "ana"})
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["claim"]["claimant"] == "ana"
    _problem(await http.post(url, json={"reviewer": "bo"}), 409, "claimed-by-another")
    _problem(await _decide(http, review, reviewer="bo"), 409, "claimed-by-another")
    _problem(await http.delete(url, params={"reviewer": "bo"}), 409, "claimed-by-another")
    mine = {"run_id": review["run_id"]}
    assert [
        r["id"]
        for r in (await http.get("/v1/reviews", params={**mine, "claimed": True})).json()["reviews"]
    ] == [review["id"]]
    assert (await http.get("/v1/reviews", params={**mine, "claimed": False})).json()[
        "reviews"
    ] == []

    # The workflow holds the claim: a forged decision by someone else never reaches history.
    handle = temporal_client.get_workflow_handle_for(AgentWorkflow.run, review["run_id"])
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            AgentWorkflow.decide,
            DecisionInput(
                review_id=review["id"],
                action="approve",
                action_hash=review["action_hash"],
                reviewer="bo",
            ),
        )
    assert refused.value.cause.type == "ClaimedByAnother"
    with pytest.raises(WorkflowUpdateFailedError) as stolen:
        await handle.execute_update(
            AgentWorkflow.claim, ClaimInput(review_id=review["id"], claimant="bo", lease_s=60)
        )
    assert stolen.value.cause.type == "ClaimedByAnother"
    assert await _updates_accepted(temporal_client, review["run_id"]) == 1  # ana's claim

    released = await http.delete(url, params={"reviewer": "ana"})
    assert released.status_code == 204, released.text
    assert (await http.get(f"/v1/reviews/{review['id']}")).json()["claim"] is None

    # An abandoned claim returns to the queue when its lease ends.
    short = await http.post(url, json={"reviewer": "bo", "lease_s": 1})
    assert short.status_code == 200, short.text
    _problem(await http.post(url, json={"reviewer": "ana"}), 409, "claimed-by-another")
    await asyncio.sleep(1.5)
    assert (await http.get(f"/v1/reviews/{review['id']}")).json()["claim"] is None
    assert (await http.post(url, json={"reviewer": "ana"})).status_code == 200

    decided = await _decide(http, review, action="reject", reviewer="ana", comment="no")
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "rejected" and decided.json()["claim"] is None
    _problem(await http.post(url, json={"reviewer": "ana"}), 409, "review-not-pending")
    await wait_status(http, review["run_id"], {"rejected"})


async def test_queues_filter_by_queue_status_reason_and_age_with_pagination(http):
    reviews = [await _review(http) for _ in range(3)]
    ours = {r["id"] for r in reviews}
    seen: list[str] = []
    url: str | None = "/v1/reviews?" + str(
        httpx.QueryParams(queue="default", status="pending", newer_than="PT10M", limit=2)
    )
    while url is not None:
        page = (await http.get(url)).json()
        assert len(page["reviews"]) <= 2
        assert all(r["queue"] == "default" and r["status"] == "pending" for r in page["reviews"])
        seen += [r["id"] for r in page["reviews"]]
        url = page["next"]
    assert ours <= set(seen) and len(seen) == len(set(seen))
    for params in ({"older_than": 3600}, {"queue": "elsewhere"}, {"newer_than": "PT0S"}):
        page = (await http.get("/v1/reviews", params={"status": "pending", **params})).json()
        assert not ours & {r["id"] for r in page["reviews"]}, params
    _problem(await http.get("/v1/reviews", params={"reason": "boredom"}), 422, "validation-error")
    for review in reviews:
        assert (await _decide(http, review, action="reject")).status_code == 200


async def test_an_edit_that_breaks_the_tools_schema_never_reaches_history(http, temporal_client):
    body = {"agent": "assistant", "input": "Please open a ticket: export to PDF is broken"}
    run_id = (await http.post("/v1/runs", json=body)).json()["run_id"]
    pending = (await wait_status(http, run_id, {"awaiting_review"}))["pending_review"]
    review = (await http.get(f"/v1/reviews/{pending['review_id']}")).json()
    assert review["reason"] == "tool_approval" and review["tool_parameters"]["properties"]
    bad = {"action": "edit", "arguments": {"subject": 7}}
    _problem(await _decide(http, review, **bad), 422, "invalid-arguments")

    handle = temporal_client.get_workflow_handle_for(AgentWorkflow.run, run_id)
    for forged in (bad, {"action": "edit", "answer": "not a tool call"}):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                AgentWorkflow.decide,
                DecisionInput(review_id=review["id"], action_hash=review["action_hash"], **forged),
            )
        assert refused.value.cause.type == "InvalidEdit"
    assert await _updates_accepted(temporal_client, run_id) == 0
    assert (await _decide(http, review, action="reject")).status_code == 200
    await wait_status(http, run_id, {"completed"})


async def test_with_keys_the_claimant_is_the_key_and_never_the_submitter(
    secured: Secured, temporal_client
):
    async with secured.client("admin") as admin, secured.client("reviewer") as reviewer:
        run = await start_run(admin, UNSURE)
        pending = (await wait_status(admin, run["run_id"], {"awaiting_review"}))["pending_review"]
        url = f"/v1/reviews/{pending['review_id']}/claim"
        _problem(await admin.post(url, json={}), 403, "self-approval")
        handle = temporal_client.get_workflow_handle_for(AgentWorkflow.run, run["run_id"])
        own = ClaimInput(
            review_id=pending["review_id"], claimant=secured.keys["admin"]["id"], lease_s=60
        )
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(AgentWorkflow.claim, own)
        assert refused.value.cause.type == "SelfApproval"

        claimed = await reviewer.post(url, json={"reviewer": "somebody else"})
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()["claim"]["claimant"] == secured.keys["reviewer"]["id"]
        decided = await _decide(reviewer, claimed.json())
        assert decided.status_code == 200, decided.text
