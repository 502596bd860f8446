"""Keys belong to principals: one person's keys never decide that person's runs."""

import hashlib
import json
import sqlite3
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowUpdateFailedError

from keel.schemas.reviews import DecisionInput
from keel.testing.stack import Stack, wait_status
from tests.conftest import UNSURE
from tests.system.secured import Secured, create_key, keel
from tests.system.test_auth import assert_problem, start
from workflows.agent import AgentWorkflow


def _client(stack: Stack, key: dict[str, Any]) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key['key']}"}
    return httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=30)


async def _mint(admin: httpx.AsyncClient, role: str, name: str, principal: str) -> dict[str, Any]:
    created = await admin.post(
        "/v1/keys", json={"role": role, "name": name, "principal": principal}
    )
    assert created.status_code == 201, created.text
    assert created.json()["principal"] == principal
    return created.json()


async def _pending(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    run = await wait_status(http, run_id, {"awaiting_review"})
    return (await http.get(f"/v1/reviews/{run['pending_review']['review_id']}")).json()


def _decision(review: dict[str, Any]) -> dict[str, str]:
    return {"action": "approve", "action_hash": review["action_hash"]}


async def test_one_principals_keys_are_one_person_for_reviews_and_claims(
    secured: Secured,
) -> None:
    stack = secured.stack
    async with secured.client("admin") as admin:
        bad = await admin.post(
            "/v1/keys", json={"role": "reviewer", "name": "x", "principal": "Ana Souza"}
        )
        assert "not a principal id" in assert_problem(bad, 422, "validation-error")["detail"]
        ana_submits = await _mint(admin, "submitter", "ana's desk", "ana")
        ana_reviews = await _mint(admin, "reviewer", "ana's review", "ana")
        bo_claims = await _mint(admin, "reviewer", "bo's laptop", "bo")
        bo_decides = await _mint(admin, "reviewer", "bo's phone", "bo")
        listed = {k["id"]: k for k in (await admin.get("/v1/keys")).json()["keys"]}
        assert listed[ana_reviews["id"]]["principal"] == "ana"
        # A key created without a principal is a principal of its own.
        assert listed[secured.keys["reviewer"]["id"]]["principal"] == secured.keys["reviewer"]["id"]

    async with (
        _client(stack, ana_submits) as submitter,
        _client(stack, ana_reviews) as ana,
        _client(stack, bo_claims) as bo,
        _client(stack, bo_decides) as bo_again,
        secured.client("reviewer") as someone_else,
    ):
        run_id = await start(submitter, UNSURE)
        review = await _pending(ana, run_id)
        assert (await ana.get(f"/v1/runs/{run_id}")).json()["submitted_by"] == "ana"
        claim = f"/v1/reviews/{review['id']}/claim"
        decision = f"/v1/reviews/{review['id']}/decision"
        # Ana's reviewer key is Ana: she neither claims nor decides a run she submitted.
        assert_problem(await ana.post(claim, json={}), 403, "self-approval")
        refused = await ana.post(decision, json=_decision(review))
        assert "ana submitted run" in assert_problem(refused, 403, "self-approval")["detail"]

        # Bo claims with one key and decides with another: a claim is the principal's.
        claimed = await bo.post(claim, json={})
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()["claim"]["claimant"] == "bo"
        held = await someone_else.post(decision, json=_decision(review))
        assert_problem(held, 409, "claimed-by-another")
        decided = await bo_again.post(decision, json=_decision(review))
        assert decided.status_code == 200, decided.text
        await wait_status(submitter, run_id, {"completed"})
        entries = (await submitter.get(f"/v1/runs/{run_id}/audit")).json()["entries"]

    by_kind = {entry["kind"]: entry for entry in entries}
    assert by_kind["run.started"]["actor"] == "ana"
    assert by_kind["run.started"]["data"]["key"] == ana_submits["id"]
    assert by_kind["review.claimed"]["actor"] == "bo"
    assert by_kind["review.claimed"]["data"]["key"] == bo_claims["id"]
    assert by_kind["review.decided"]["actor"] == "bo"
    assert by_kind["review.decided"]["data"]["reviewer_key"] == bo_decides["id"]


async def test_an_admin_never_approves_their_own_run_through_another_key(
    secured: Secured, temporal_client: Any
) -> None:
    stack = secured.stack
    async with secured.client("admin") as admin:
        boss = await _mint(admin, "admin", "boss", "boss")
    async with _client(stack, boss) as boss_admin:
        boss_reviews = await _mint(boss_admin, "reviewer", "boss, reviewing", "boss")
        run_id = await start(boss_admin, UNSURE)
        review = await _pending(boss_admin, run_id)
        decision = f"/v1/reviews/{review['id']}/decision"
        async with _client(stack, boss_reviews) as second_key:
            refused = await second_key.post(decision, json=_decision(review))
            assert_problem(refused, 403, "self-approval")
        assert_problem(
            await boss_admin.post(decision, json=_decision(review)), 403, "self-approval"
        )

        # The workflow compares principals too, before anything enters its history.
        handle = temporal_client.get_workflow_handle_for(AgentWorkflow.run, run_id)
        forged = DecisionInput(
            review_id=review["id"],
            action="approve",
            action_hash=review["action_hash"],
            reviewer_id="boss",
            reviewer_key=boss_reviews["id"],
        )
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update(AgentWorkflow.decide, forged)
        assert failed.value.cause.type == "SelfApproval"

        # Another principal decides.
        async with secured.client("reviewer") as reviewer:
            decided = await reviewer.post(decision, json=_decision(review))
            assert decided.status_code == 200, decided.text
        await wait_status(boss_admin, run_id, {"completed"})


_OLD_API_KEYS = """
CREATE TABLE api_keys (
    id VARCHAR(40) NOT NULL,
    name VARCHAR(200) NOT NULL,
    role VARCHAR(20) NOT NULL,
    secret_sha256 VARCHAR(64) NOT NULL,
    created_at DATETIME NOT NULL,
    revoked_at DATETIME,
    PRIMARY KEY (id)
)
"""
"""`api_keys` as the Keel before principals created it."""


def _old_key(db: sqlite3.Connection, key_id: str, role: str, name: str) -> dict[str, str]:
    secret = f"secret-of-{key_id}"
    digest = hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()
    db.execute(
        "INSERT INTO api_keys VALUES (?, ?, ?, ?, '2026-01-02 03:04:05.000000', NULL)",
        (key_id, name, role, digest),
    )
    return {"id": key_id, "key": f"keel_{key_id}_{secret}"}


async def test_keys_of_an_older_database_become_one_principal_each(make_stack: Any) -> None:
    stack: Stack = make_stack(KEEL_AUTH="required")
    stack.db_file.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(stack.db_file) as db:
        db.execute(_OLD_API_KEYS)
        # Two keys with one name: names were free text, so they stay two principals.
        admin = _old_key(db, "a0a0a0a0a0a0", "admin", "ana")
        submitter = _old_key(db, "b1b1b1b1b1b1", "submitter", "ana")
    db.close()

    # Any command that opens the database migrates it; no step of its own.
    listed = await keel(stack, "--json", "keys", "list")
    assert listed.returncode == 0, listed.stderr
    principals = {key["id"]: key["principal"] for key in json.loads(listed.stdout)}
    assert principals == {admin["id"]: admin["id"], submitter["id"]: submitter["id"]}
    with sqlite3.connect(stack.db_file) as db:
        empty = db.execute("SELECT count(*) FROM api_keys WHERE principal IS NULL").fetchone()
    assert empty == (0,)
    db.close()

    # The CLI gives a migrated person another key, and refuses a malformed principal.
    reviews = await create_key(stack, "reviewer", "ana reviewing", principal=submitter["id"])
    assert reviews["principal"] == submitter["id"]
    bad = await keel(
        stack, "keys", "create", "--role", "reviewer", "--name", "x", "--principal", "A"
    )
    assert bad.returncode == 2 and "'A' is not a principal id" in bad.stderr
    text = await keel(
        stack, "keys", "create", "--role", "reviewer", "--name", "cy", "--principal", "cy"
    )
    assert text.returncode == 0 and "principal  cy" in text.stdout

    await stack.start_worker()
    await stack.start_api()
    async with (
        _client(stack, submitter) as old_submitter,
        _client(stack, reviews) as same_person,
        _client(stack, admin) as other_person,
    ):
        run_id = await start(old_submitter, UNSURE)
        review = await _pending(other_person, run_id)
        # The run names the old key, which is its own principal: the new key is the same person.
        assert (await other_person.get(f"/v1/runs/{run_id}")).json()["submitted_by"] == (
            submitter["id"]
        )
        decision = f"/v1/reviews/{review['id']}/decision"
        assert_problem(
            await same_person.post(decision, json=_decision(review)), 403, "self-approval"
        )
        decided = await other_person.post(decision, json=_decision(review))
        assert decided.status_code == 200, decided.text
        await wait_status(old_submitter, run_id, {"completed"})
