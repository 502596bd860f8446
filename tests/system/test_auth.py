"""API keys, roles, open mode and rate limits, through the REST API of real processes."""

import asyncio
import json
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowUpdateFailedError

from keel.net import free_port
from keel.schemas.reviews import DecisionInput
from keel.testing.stack import Stack, eventually, wait_status
from tests.conftest import CONFIDENT, UNSURE
from tests.system.secured import Secured, create_key, create_keys, keel
from workflows.agent import AgentWorkflow

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"] == f"urn:keel:problem:{code}", problem
    return problem


async def start(http: httpx.AsyncClient, question: str) -> str:
    response = await http.post("/v1/runs", json={"agent": "support", "input": question})
    assert response.status_code == 202, response.text
    return response.json()["run_id"]


async def test_requests_without_a_valid_key_get_401(secured: Secured) -> None:
    async with secured.client(None) as anonymous:
        for method, path in (("GET", "/v1/runs"), ("GET", "/v1/agents"), ("GET", "/v1/keys")):
            response = await anonymous.request(method, path)
            assert_problem(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "x-keel-auth" not in response.headers
        started = await anonymous.post("/v1/runs", json={"agent": "support", "input": "hi"})
        assert_problem(started, 401, "unauthorized")
        assert (await anonymous.get("/healthz")).status_code == 200
        forged = {"Authorization": "Bearer keel_000000000000_not-a-real-secret"}
        assert_problem(await anonymous.get("/v1/agents", headers=forged), 401, "unauthorized")
        wrong_secret = secured.keys["admin"]["key"][:-4] + "AAAA"
        response = await anonymous.get("/v1/agents", headers={"X-API-Key": wrong_secret})
        assert_problem(response, 401, "unauthorized")
        good = {"X-API-Key": secured.keys["reviewer"]["key"]}
        assert (await anonymous.get("/v1/agents", headers=good)).status_code == 200


async def test_each_role_may_do_only_its_part(secured: Secured) -> None:
    async with (
        secured.client("submitter") as submitter,
        secured.client("reviewer") as reviewer,
        secured.client("operator") as operator,
    ):
        body = {"agent": "support", "input": CONFIDENT}
        for http in (reviewer, operator):
            assert_problem(await http.post("/v1/runs", json=body), 403, "forbidden")
        assert_problem(await submitter.get("/v1/reviews"), 403, "forbidden")
        for http in (submitter, reviewer, operator):
            assert_problem(await http.get("/v1/keys"), 403, "forbidden")
            created = await http.post("/v1/keys", json={"role": "admin", "name": "me"})
            assert_problem(created, 403, "forbidden")
        assert (await reviewer.get("/v1/reviews")).status_code == 200
        assert (await operator.get("/v1/reviews")).status_code == 200
        run_id = await start(submitter, CONFIDENT)
        await wait_status(submitter, run_id, {"completed"})
        assert_problem(await reviewer.get(f"/v1/runs/{run_id}/audit"), 403, "forbidden")
        assert_problem(await reviewer.post(f"/v1/runs/{run_id}/cancel"), 403, "forbidden")
        seen = await operator.get(f"/v1/runs/{run_id}")
        assert seen.json()["submitted_by"] == secured.keys["submitter"]["id"]
        assert (await reviewer.get(f"/v1/runs/{run_id}")).status_code == 200


async def test_keys_are_managed_over_rest_and_a_revoked_key_gets_401(secured: Secured) -> None:
    async with secured.client("admin") as admin:
        created = await admin.post("/v1/keys", json={"role": "reviewer", "name": "ana"})
        assert created.status_code == 201, created.text
        key = created.json()
        assert key["key"].startswith(f"keel_{key['id']}_") and key["role"] == "reviewer"
        listed = (await admin.get("/v1/keys")).json()["keys"]
        mine = next(k for k in listed if k["id"] == key["id"])
        assert mine == {k: key[k] for k in mine} and "key" not in mine
        assert not any(key["key"] in json.dumps(k) for k in listed)
        bad_role = await admin.post("/v1/keys", json={"role": "root", "name": "x"})
        assert_problem(bad_role, 422, "validation-error")

        ana = {"Authorization": f"Bearer {key['key']}"}
        # Requests at once share the key's look-up; each answer is the key's own.
        at_once = await asyncio.gather(*(admin.get("/v1/reviews", headers=ana) for _ in range(20)))
        assert {response.status_code for response in at_once} == {200}
        revoked = await admin.post(f"/v1/keys/{key['id']}/revoke")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        # The next look-up comes after the revocation: nothing answers from before it.
        at_once = await asyncio.gather(*(admin.get("/v1/reviews", headers=ana) for _ in range(20)))
        for response in at_once:
            assert_problem(response, 401, "unauthorized")
        assert_problem(await admin.post("/v1/keys/nope/revoke"), 404, "unknown-key")

    # The CLI sees the same table, and revokes the same way.
    listed = await keel(secured.stack, "keys", "list")
    assert key["id"] in listed.stdout and "revoked" in listed.stdout
    assert key["key"] not in listed.stdout
    extra = await create_key(secured.stack, "operator", "ops")
    assert (await keel(secured.stack, "keys", "revoke", extra["id"])).returncode == 0
    async with secured.client(None) as anonymous:
        response = await anonymous.get("/v1/runs", headers={"X-API-Key": extra["key"]})
        assert_problem(response, 401, "unauthorized")


async def test_submitters_see_only_their_own_runs(secured: Secured) -> None:
    async with (
        secured.client("submitter") as mine,
        secured.client("other") as other,
        secured.client("operator") as operator,
    ):
        run_id = await start(mine, CONFIDENT)
        await wait_status(mine, run_id, {"completed"})
        for path in (f"/v1/runs/{run_id}", f"/v1/runs/{run_id}/audit"):
            assert_problem(await other.get(path), 404, "unknown-run")
        assert_problem(await other.get(f"/v1/runs/{run_id}/events"), 404, "unknown-run")
        assert_problem(await other.post(f"/v1/runs/{run_id}/cancel"), 404, "unknown-run")
        # The same idempotency key from two submitters starts two runs.
        body = {"agent": "support", "input": CONFIDENT, "idempotency_key": "ticket-1"}
        first = (await mine.post("/v1/runs", json=body)).json()["run_id"]
        second = (await other.post("/v1/runs", json=body)).json()["run_id"]
        assert first != second
        assert (await mine.post("/v1/runs", json=body)).json()["run_id"] == first

        async def listed_right(params: dict[str, str]) -> bool:
            async def ids(http: httpx.AsyncClient) -> set[str]:
                page = await http.get("/v1/runs", params={**params, "limit": "100"})
                return {r["run_id"] for r in page.json()["runs"]}

            own, theirs, everyone = await ids(mine), await ids(other), await ids(operator)
            return (
                {run_id, first} <= own
                and second in theirs
                and not own & theirs
                and {run_id, first, second} <= everyone
            )

        # From Temporal's visibility, and sorted from Keel's ledger.
        for params in ({}, {"sort": "-created_at"}, {"sort": "cost_usd"}):
            await eventually(lambda params=params: listed_right(params))
        # Spend per principal is for operators.
        assert_problem(await mine.get("/v1/usage"), 403, "forbidden")
        usage = await operator.get("/v1/usage", params={"group_by": "principal"})
        principals = {row["group"]: row["runs"] for row in usage.json()["rows"]}
        assert principals[secured.keys["submitter"]["principal"]] >= 2


async def test_nobody_decides_a_review_on_their_own_run(
    secured: Secured, temporal_client: Any
) -> None:
    async with secured.client("admin") as admin, secured.client("reviewer") as reviewer:
        run_id = await start(admin, UNSURE)  # admins may submit, and may decide others' runs
        run = await wait_status(admin, run_id, {"awaiting_review"})
        review = (await admin.get(f"/v1/reviews/{run['pending_review']['review_id']}")).json()
        decision = {"action": "approve", "action_hash": review["action_hash"]}
        refused = await admin.post(f"/v1/reviews/{review['id']}/decision", json=decision)
        assert_problem(refused, 403, "self-approval")

        # The workflow's validator refuses it too, before it enters history.
        handle = temporal_client.get_workflow_handle_for(AgentWorkflow.run, run_id)
        forged = DecisionInput(
            review_id=review["id"],
            action="approve",
            action_hash=review["action_hash"],
            reviewer_id=secured.keys["admin"]["id"],
        )
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update(AgentWorkflow.decide, forged)
        assert failed.value.cause.type == "SelfApproval"
        history = await handle.fetch_history()
        assert not [
            e
            for e in history.events
            if e.HasField("workflow_execution_update_accepted_event_attributes")
        ]

        # A body naming another reviewer changes nothing: the key decides who decides.
        decision["reviewer"] = "someone else"
        again = await admin.post(f"/v1/reviews/{review['id']}/decision", json=decision)
        assert_problem(again, 403, "self-approval")
        decided = await reviewer.post(f"/v1/reviews/{review['id']}/decision", json=decision)
        assert decided.status_code == 200, decided.text
        assert decided.json()["reviewer"] == "reviewer key"
        await wait_status(admin, run_id, {"completed"})


async def test_a_principal_over_its_rate_gets_429_with_retry_after(make_stack: Any) -> None:
    stack = make_stack(KEEL_AUTH="required", KEEL_API_RATE_PER_S="0.2", KEEL_API_RATE_BURST="3")
    keys = await create_keys(stack, {"fast": "reviewer", "calm": "reviewer"})
    fast, calm = keys["fast"], keys["calm"]
    # A second key of the same principal draws on the same budget.
    twin = await create_key(stack, "submitter", "fast, again", principal=fast["principal"])
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        answers = [
            await http.get("/v1/agents", headers={"X-API-Key": fast["key"]}) for _ in range(4)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert_problem(answers[-1], 429, "rate-limited")
        # One token every 5 s, and the burst was spent a moment ago.
        assert answers[-1].headers["retry-after"] in ("4", "5")
        again = await http.get("/v1/agents", headers={"X-API-Key": twin["key"]})
        assert_problem(again, 429, "rate-limited")
        calm_answer = await http.get("/v1/agents", headers={"X-API-Key": calm["key"]})
        assert calm_answer.status_code == 200


async def test_open_on_loopback_until_the_first_key_and_never_elsewhere(make_stack: Any) -> None:
    stack = make_stack()
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        response = await http.get("/v1/agents")
        assert response.status_code == 200 and response.headers["x-keel-auth"] == "open"
        assert "the API is OPEN" in stack.log("api.log")
        await create_keys(stack, {"first": "admin"})  # written by another process, as the CLI does
        assert_problem(await http.get("/v1/agents"), 401, "unauthorized")

    exposed = make_stack(KEEL_API_HOST="0.0.0.0")
    refused = await keel(exposed, "api")
    assert refused.returncode == 1
    assert "refusing to serve the API open on 0.0.0.0" in refused.stderr


async def test_an_open_api_refuses_what_a_web_page_could_send(make_stack: Any) -> None:
    stack = make_stack()
    await stack.start_worker()
    await stack.start_api()
    port = stack.api_url.rpartition(":")[2]
    upload = {"files": ("evil.md", b"# Refunds\n\nEvery refund is doubled.", "text/markdown")}
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        before = (await http.get("/v1/collections/quillpad")).json()["documents"]

        # DNS rebinding: the page's own name, resolved to 127.0.0.1.
        rebound = await http.get("/v1/keys", headers={"Host": f"evil.example:{port}"})
        assert_problem(rebound, 403, "open-mode-refused")
        for own in (f"localhost:{port}", f"127.0.0.1:{port}"):
            assert (await http.get("/v1/agents", headers={"Host": own})).status_code == 200

        # A form on another site posting files into a collection: no preflight, so refused here.
        for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            posted = await http.post(
                "/v1/collections/quillpad/documents", files=upload, headers=headers
            )
            assert_problem(posted, 403, "open-mode-refused")
        assert (await http.get("/v1/collections/quillpad")).json()["documents"] == before

        # The API's own page, and clients outside a browser, still write.
        same = {"Origin": stack.api_url, "Sec-Fetch-Site": "same-origin"}
        created = await http.post("/v1/collections", json={"name": "mine"}, headers=same)
        assert created.status_code == 201, created.text

        # With a key, the key decides.
        keys = await create_keys(stack, {"ana": "admin"})
        keyed = {"X-API-Key": keys["ana"]["key"], "Host": f"keel.internal:{port}"}
        assert (await http.get("/v1/keys", headers=keyed)).status_code == 200


def _from(address: str, **headers: str) -> dict[str, str]:
    """Headers of a request from `address` (uvicorn trusts `X-Forwarded-For` from loopback)."""
    return {"X-Forwarded-For": address, **headers}


async def test_a_flood_with_a_bad_key_gets_429_and_spares_other_addresses(make_stack: Any) -> None:
    stack = make_stack(KEEL_AUTH="required")  # the default budget: 50 failures a minute
    keys = await create_keys(stack, {"ana": "reviewer"})
    await stack.start_api()
    bad = _from("203.0.113.7", **{"X-API-Key": "keel_000000000000_guessed"})
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        answers = [await http.get("/v1/agents", headers=bad) for _ in range(500)]
        assert [a.status_code for a in answers] == [401] * 50 + [429] * 450
        over = assert_problem(answers[50], 429, "rate-limited")
        assert "203.0.113.7 failed to authenticate over 50 times" in over["detail"]
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
        # The flooding address is refused whatever it sends; another address is not.
        good = {"X-API-Key": keys["ana"]["key"]}
        flooder = await http.get("/v1/agents", headers=_from("203.0.113.7", **good))
        assert_problem(flooder, 429, "rate-limited")
        assert (await http.get("/v1/agents", headers=_from("198.51.100.9", **good))).is_success
        assert_problem(
            await http.get("/v1/agents", headers=_from("2001:db8::1")), 401, "unauthorized"
        )


async def test_an_open_api_limits_each_address_and_its_failures(make_stack: Any) -> None:
    stack = make_stack(
        KEEL_API_ADDRESS_RATE_PER_S="0.2",
        KEEL_API_ADDRESS_RATE_BURST="3",
        KEEL_API_FAILED_AUTH_LIMIT="3",
    )
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        answers = [await http.get("/v1/agents", headers=_from("192.0.2.1")) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[0].headers["x-keel-auth"] == "open"
        assert (
            "192.0.2.1 is over the keyless rate"
            in assert_problem(answers[-1], 429, "rate-limited")["detail"]
        )
        assert answers[-1].headers["retry-after"] in ("4", "5")
        assert (await http.get("/v1/agents", headers=_from("192.0.2.2"))).status_code == 200
        # A bad key fails in open mode too, and a flood of them is refused.
        bad = _from("192.0.2.3", **{"X-API-Key": "keel_000000000000_guessed"})
        answers = [await http.get("/v1/agents", headers=bad) for _ in range(5)]
        assert [a.status_code for a in answers] == [401, 401, 401, 429, 429]


async def test_apis_sharing_a_database_share_the_failure_budget(make_stack: Any) -> None:
    first = make_stack(KEEL_AUTH="required", KEEL_API_FAILED_AUTH_LIMIT="4")
    second = Stack(first.temporal_address, first.data_dir, first.settings, first.task_queue)
    keys = await create_keys(first, {"ana": "reviewer"})
    try:
        await first.start_api()
        await second.start_api()
        bad = _from("203.0.113.8", **{"X-API-Key": "keel_000000000000_guessed"})
        async with (
            httpx.AsyncClient(base_url=first.api_url) as one,
            httpx.AsyncClient(base_url=second.api_url) as two,
        ):
            statuses = [
                (await http.get("/v1/agents", headers=bad)).status_code
                for http in (one, two, one, two)
            ]
            assert statuses == [401, 401, 401, 401]
            # Four failures across both: the fifth, on either, is over the shared budget.
            assert_problem(await one.get("/v1/agents", headers=bad), 429, "rate-limited")
            assert_problem(await two.get("/v1/agents", headers=bad), 429, "rate-limited")
            good = _from("198.51.100.10", **{"X-API-Key": keys["ana"]["key"]})
            assert (await two.get("/v1/agents", headers=good)).status_code == 200
    finally:
        second.stop_all()


async def test_metrics_take_an_operator_key_when_keys_are_required(make_stack: Any) -> None:
    private = free_port()
    stack = make_stack(KEEL_AUTH="required", KEEL_API_METRICS_PORT=str(private))
    keys = await create_keys(stack, {role: role for role in ("operator", "admin", "reviewer")})
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        assert_problem(await http.get("/metrics"), 401, "unauthorized")
        reviewer = {"X-API-Key": keys["reviewer"]["key"]}
        assert_problem(await http.get("/metrics", headers=reviewer), 403, "forbidden")
        for role in ("operator", "admin"):
            scraped = await http.get("/metrics", headers={"X-API-Key": keys[role]["key"]})
            assert (
                scraped.status_code == 200 and "python_gc_objects_collected_total" in scraped.text
            )
        # The private port, for a scraper on a private network, takes no key.
        assert (
            "python_gc_objects_collected_total"
            in (await http.get(f"http://127.0.0.1:{private}/metrics")).text
        )


async def test_metrics_stay_open_in_open_mode_on_loopback_only(make_stack: Any) -> None:
    stack = make_stack()
    await stack.start_api()
    port = stack.api_url.rpartition(":")[2]
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        scraped = await http.get("/metrics")
        assert "python_gc_objects_collected_total" in scraped.text
        rebound = await http.get("/metrics", headers={"Host": f"evil.example:{port}"})
        assert_problem(rebound, 403, "open-mode-refused")


def _preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_without_cors_origins_no_page_of_another_site_reads_or_preflights(
    make_stack: Any,
) -> None:
    stack = make_stack(KEEL_AUTH="required")
    keys = await create_keys(stack, {"ana": "admin"})
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        for path in ("/v1/runs", "/v1/keys", "/healthz"):
            refused = await http.options(path, headers=_preflight("https://app.example"))
            assert_problem(refused, 405, "method-not-allowed")
            assert not [h for h in refused.headers if h.startswith("access-control-")]
        keyed = {"Origin": "https://app.example", "X-API-Key": keys["ana"]["key"]}
        answered = await http.get("/v1/agents", headers=keyed)
        assert answered.status_code == 200
        assert not [h for h in answered.headers if h.startswith("access-control-")]


async def test_cors_origins_allow_exactly_those_origins(make_stack: Any) -> None:
    app = "https://app.example"
    stack = make_stack(KEEL_AUTH="required", KEEL_CORS_ORIGINS=json.dumps([app]))
    keys = await create_keys(stack, {"ana": "admin"})
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        allowed = await http.options("/v1/runs", headers=_preflight(app))
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == app
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in allowed.headers
        for origin, method in ((app, "TRACE"), ("https://evil.example", "POST")):
            refused = await http.options("/v1/runs", headers=_preflight(origin, method))
            assert_problem(refused, 403, "cross-origin-refused")
            assert "access-control-allow-origin" not in refused.headers

        keyed = {"X-API-Key": keys["ana"]["key"]}
        read = await http.get("/v1/agents", headers={"Origin": app, **keyed})
        assert read.status_code == 200 and read.headers["access-control-allow-origin"] == app
        assert "Retry-After" in read.headers["access-control-expose-headers"]
        # Its page can read a problem too; another site's page can read nothing.
        unauthorized = await http.get("/v1/agents", headers={"Origin": app})
        assert unauthorized.headers["access-control-allow-origin"] == app
        other = await http.get("/v1/agents", headers={"Origin": "https://evil.example", **keyed})
        assert "access-control-allow-origin" not in other.headers
