"""The REST API over real HTTP, against a real worker process and a real dev server."""

import asyncio
from pathlib import Path

import httpx

import tools.retrieval
from keel.search_attributes import KEEL_STATUS
from keel.testing.stack import eventually, start_run, wait_status
from tests.conftest import CONFIDENT, UNSURE

PROBLEM = "application/problem+json"
ARTICLES = {p.stem for p in (Path(tools.retrieval.__file__).parent / "kb").glob("*.md")}


async def _escalated(http: httpx.AsyncClient, question: str = UNSURE) -> tuple[str, dict]:
    run = await start_run(http, question)
    view = await wait_status(http, run["run_id"], {"awaiting_review"})
    return run["run_id"], view["pending_review"]


def _bound(review: dict) -> dict:
    """What binds a decision to the review's pending action."""
    return {"action_hash": review["action_hash"]}


def _assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"urn:keel:problem:{code}"
    assert body["status"] == status and body["detail"]
    return body


async def test_confident_question_completes_with_citations_of_shipped_articles(http):
    run = await start_run(http, CONFIDENT)
    assert run["status"] == "running"
    assert run["ui_url"].endswith(f"/namespaces/default/workflows/{run['run_id']}")
    view = await wait_status(http, run["run_id"], {"completed"})
    result = view["result"]
    assert "Forgot password" in result["answer"]
    assert result["confidence"] >= 0.6 and not result["reviewed"]
    cited = {c["passage_id"].split("#")[0] for c in result["citations"]}
    assert cited and cited <= ARTICLES
    assert "reset-password" in cited
    assert view["closed_at"] is not None and view["pending_review"] is None


async def test_unsure_question_waits_for_review_and_is_visible(http, temporal_client):
    run_id, review = await _escalated(http)
    assert review["reason"] in {"low_confidence", "off_topic"}
    assert review["confidence"] < review["threshold"]

    pending = (await http.get("/v1/reviews", params={"status": "pending"})).json()["reviews"]
    assert review["review_id"] in {r["id"] for r in pending}
    row = (await http.get(f"/v1/reviews/{review['review_id']}")).json()
    assert row["run_id"] == run_id and row["question"] == UNSURE and row["status"] == "pending"

    # Operators find it by search attribute, through the API and straight from Temporal.
    async def listed_by_the_api() -> bool:
        page = (await http.get("/v1/runs", params={"status": "awaiting_review"})).json()
        return run_id in {r["run_id"] for r in page["runs"]}

    async def found_in_visibility() -> bool:
        query = f"{KEEL_STATUS.name} = 'awaiting_review' AND WorkflowId = '{run_id}'"
        return [w.id async for w in temporal_client.list_workflows(query)] == [run_id]

    await eventually(listed_by_the_api)
    await eventually(found_in_visibility)


async def test_approve_completes_with_the_proposed_answer(http):
    run_id, review = await _escalated(http)
    decided = await http.post(
        f"/v1/reviews/{review['review_id']}/decision",
        json={"action": "approve", "comment": "fine", "reviewer": "ana", **_bound(review)},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved" and decided.json()["reviewer"] == "ana"
    view = await wait_status(http, run_id, {"completed"})
    assert view["result"]["answer"] == review["proposed_answer"]
    assert view["result"]["reviewed"] is True


async def test_edit_completes_with_the_edited_answer(http):
    run_id, review = await _escalated(http)
    edited = "Could you tell us which part of Quillpad stopped working?"
    decided = await http.post(
        f"/v1/reviews/{review['review_id']}/decision",
        json={"action": "edit", "answer": edited, **_bound(review)},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "edited" and decided.json()["answer"] == edited
    assert decided.json()["edited_citations"] is None
    view = await wait_status(http, run_id, {"completed"})
    assert view["result"]["answer"] == edited
    assert view["result"]["citations"] == review["citations"]  # unchosen: kept as proposed


async def test_an_edited_answer_cites_what_the_reviewer_chose(http):
    run_id, review = await _escalated(http)
    url = f"/v1/reviews/{review['review_id']}/decision"
    edited = {"action": "edit", "answer": "Which part stopped working: sync, sign-in, export?"}
    unknown = await http.post(url, json={**edited, "citations": ["nowhere#1"], **_bound(review)})
    _assert_problem(unknown, 422, "validation-error")
    assert unknown.json()["errors"][0]["field"] == "citations.0"
    cited = {c["passage_id"] for c in review["citations"]}
    chosen = next(p for p in review["passages"] if p["id"] not in cited)
    decided = await http.post(url, json={**edited, "citations": [chosen["id"]], **_bound(review)})
    assert decided.status_code == 200, decided.text
    cites = [{"passage_id": chosen["id"], "title": chosen["title"]}]
    assert decided.json()["edited_citations"] == cites
    view = await wait_status(http, run_id, {"completed"})
    assert view["result"]["citations"] == cites


async def test_reject_ends_the_run_rejected(http):
    run_id, review = await _escalated(http, "Can you recommend a good pizza place?")
    decided = await http.post(
        f"/v1/reviews/{review['review_id']}/decision", json={"action": "reject", **_bound(review)}
    )
    assert decided.json()["status"] == "rejected"
    view = await wait_status(http, run_id, {"rejected"})
    assert view["result"]["answer"] is None

    async def listed_as_rejected() -> bool:
        page = (await http.get("/v1/runs", params={"status": "rejected"})).json()
        return run_id in {r["run_id"] for r in page["runs"]}

    await eventually(listed_as_rejected)


async def test_a_second_decision_is_refused_with_409(http):
    run_id, review = await _escalated(http)
    url = f"/v1/reviews/{review['review_id']}/decision"
    assert (await http.post(url, json={"action": "approve", **_bound(review)})).status_code == 200
    refused = await http.post(url, json={"action": "reject", **_bound(review)})
    _assert_problem(refused, 409, "review-not-pending")
    view = await wait_status(http, run_id, {"completed"})
    assert view["result"]["answer"] == review["proposed_answer"]


async def test_concurrent_decisions_let_exactly_one_through(http):
    run_id, review = await _escalated(http)
    url = f"/v1/reviews/{review['review_id']}/decision"
    answers = await asyncio.gather(
        http.post(url, json={"action": "approve", **_bound(review)}),
        http.post(url, json={"action": "reject", **_bound(review)}),
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409], [a.text for a in answers]
    await wait_status(http, run_id, {"completed", "rejected"})


async def test_decision_validation(http):
    _, review = await _escalated(http)
    url = f"/v1/reviews/{review['review_id']}/decision"
    edit = {"action": "edit", **_bound(review)}
    body = _assert_problem(await http.post(url, json=edit), 422, "validation-error")
    assert "answer" in body["detail"]
    _assert_problem(await http.post(url, json={"action": "maybe"}), 422, "validation-error")
    # Nothing was decided by the refused requests.
    assert (await http.get(f"/v1/reviews/{review['review_id']}")).json()["status"] == "pending"
    assert (await http.post(url, json={"action": "reject", **_bound(review)})).status_code == 200


async def test_cancel_closes_the_pending_review(http):
    run_id, review = await _escalated(http)
    cancelled = await http.post(f"/v1/runs/{run_id}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    await wait_status(http, run_id, {"cancelled"})
    for _ in range(50):
        row = (await http.get(f"/v1/reviews/{review['review_id']}")).json()
        if row["status"] != "pending":
            break
        await asyncio.sleep(0.1)
    assert row["status"] == "cancelled"
    _assert_problem(await http.post(f"/v1/runs/{run_id}/cancel"), 409, "run-not-running")
    _assert_problem(
        await http.post(
            f"/v1/reviews/{review['review_id']}/decision",
            json={"action": "approve", **_bound(review)},
        ),
        409,
        "review-not-pending",
    )


async def test_idempotent_start(http):
    body = {"agent": "support", "input": {"question": CONFIDENT}, "idempotency_key": "order-42"}
    first = await http.post("/v1/runs", json=body)
    second = await http.post("/v1/runs", json=body)
    assert first.status_code == second.status_code == 202
    assert first.json()["run_id"] == second.json()["run_id"]
    await wait_status(http, first.json()["run_id"], {"completed"})
    # Still the same run once it has ended.
    third = await http.post("/v1/runs", json=body)
    assert third.json()["run_id"] == first.json()["run_id"]
    assert third.json()["status"] == "completed"
    other = {**body, "input": {"question": "How do I export to PDF?"}}
    _assert_problem(await http.post("/v1/runs", json=other), 422, "idempotency-key-reused")


async def test_concurrent_duplicate_starts_make_one_run(http, temporal_client):
    body = {"agent": "support", "input": CONFIDENT, "idempotency_key": "burst-1"}
    answers = await asyncio.gather(*(http.post("/v1/runs", json=body) for _ in range(20)))
    assert {a.status_code for a in answers} == {202}
    run_ids = {a.json()["run_id"] for a in answers}
    assert len(run_ids) == 1
    (run_id,) = run_ids

    async def one_execution() -> bool:
        query = f"WorkflowId = '{run_id}'"
        return len([w async for w in temporal_client.list_workflows(query)]) == 1

    await eventually(one_execution)


async def test_start_errors(http):
    body = _assert_problem(
        await http.post("/v1/runs", json={"agent": "nope", "input": "hi"}), 404, "unknown-agent"
    )
    assert "support" in body["detail"]
    body = _assert_problem(
        await http.post("/v1/runs", json={"agent": "support", "input": {"q": "hi there"}}),
        422,
        "invalid-input",
    )
    assert body["errors"][0]["field"] == "input.question"
    _assert_problem(
        await http.post("/v1/runs", json={"agent": "support", "input": "x" * 5000}),
        422,
        "invalid-input",
    )
    _assert_problem(await http.post("/v1/runs", json={"input": "hi"}), 422, "validation-error")
    _assert_problem(
        await http.post(
            "/v1/runs", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
        "validation-error",
    )


async def test_unknown_things_are_404(http):
    _assert_problem(await http.get("/v1/runs/run-nope"), 404, "unknown-run")
    _assert_problem(await http.post("/v1/runs/run-nope/cancel"), 404, "unknown-run")
    _assert_problem(await http.get("/v1/reviews/nope"), 404, "unknown-review")
    _assert_problem(
        await http.post(
            "/v1/reviews/nope/decision", json={"action": "approve", "action_hash": "0" * 64}
        ),
        404,
        "unknown-review",
    )
    _assert_problem(await http.get("/v1/nothing-here"), 404, "not-found")
    for token in ("%%%", "bm90LWEtdG9rZW4="):  # not base64; base64 of no token Temporal made
        _assert_problem(
            await http.get("/v1/runs", params={"page_token": token}), 400, "bad-page-token"
        )


async def test_list_filters_and_pages(http):
    ids = [(await start_run(http, CONFIDENT))["run_id"] for _ in range(3)]
    for run_id in ids:
        await wait_status(http, run_id, {"completed"})

    async def all_listed() -> bool:
        params = {"agent": "support", "status": "completed", "limit": 100}
        page = (await http.get("/v1/runs", params=params)).json()
        return set(ids) <= {r["run_id"] for r in page["runs"]}

    await eventually(all_listed)  # visibility catches up, then page through it
    seen: list[str] = []
    token = None
    for _ in range(50):
        params = {"agent": "support", "status": "completed", "limit": 2}
        if token:
            params["page_token"] = token
        page = (await http.get("/v1/runs", params=params)).json()
        assert len(page["runs"]) <= 2
        assert {r["status"] for r in page["runs"]} <= {"completed"}
        seen += [r["run_id"] for r in page["runs"]]
        token = page["next_page_token"]
        if not token:
            break
    assert set(ids) <= set(seen)
    assert len(seen) == len(set(seen))
    _assert_problem(await http.get("/v1/runs", params={"agent": "nope"}), 404, "unknown-agent")
    _assert_problem(await http.get("/v1/runs", params={"status": "odd"}), 422, "validation-error")


async def test_a_run_that_spends_nothing_has_a_cost_of_zero(http, temporal_client):
    run_id = (await start_run(http, CONFIDENT))["run_id"]  # local models cost nothing
    assert (await wait_status(http, run_id, {"completed"}))["cost_usd"] == 0

    async def free() -> bool:
        query = f"WorkflowId = '{run_id}' AND KeelCostUsd = 0"
        return [run.id async for run in temporal_client.list_workflows(query)] == [run_id]

    await eventually(free)  # so the Temporal UI's `KeelCostUsd` filters see every run


async def test_agents_and_openapi(http):
    agents = (await http.get("/v1/agents")).json()["agents"]
    support = next(a for a in agents if a["name"] == "support")
    assert support["text_field"] == "question"
    assert "question" in support["input_schema"]["properties"]
    schema = (await http.get("/openapi.json")).json()
    assert {"/v1/runs", "/v1/runs/{run_id}", "/v1/reviews/{review_id}/decision"} <= set(
        schema["paths"]
    )


async def test_oversized_bodies_are_refused_with_413(http):
    huge = {"agent": "support", "input": {"question": "x" * 2_000_000}}
    _assert_problem(await http.post("/v1/runs", json=huge), 413, "payload-too-large")

    async def chunks():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b"x" * 100_000

    chunked = await http.post(
        "/v1/runs", content=chunks(), headers={"content-type": "application/json"}
    )
    _assert_problem(chunked, 413, "payload-too-large")
    # Nothing was started by either.
    assert (await http.post("/v1/runs", json={"agent": "nope", "input": "x"})).status_code == 404


async def test_an_idle_connection_outlives_the_clients_own_idle_timeout(stack) -> None:
    """A client that keeps a connection 5 s idle (httpx's default) may send on it again: the
    API does not close it under the client, which would lose the request in flight."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.api_port)
    request = b"GET /healthz HTTP/1.1\r\nHost: keel\r\n\r\n"
    try:
        for pause in (0.0, 6.0):
            await asyncio.sleep(pause)
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            assert b'"ok"' in await reader.readexactly(length)
    finally:
        writer.close()
