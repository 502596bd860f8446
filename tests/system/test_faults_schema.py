"""Schemathesis over the OpenAPI schema the real `keel api` process serves.

Every operation gets a bounded, derandomized set of generated requests. No answer may be
a 5xx, and every answer must be one the schema documents, with the documented content
type and body. Generated requests are steered toward real things (agent names, the ids of
reviews that exist) so that runs start and reviews get decided. Afterwards nothing is
half-written: every run a request started exists as a run of a known agent, every review
row belongs to a run that exists, and every review a decision was accepted for is closed.

The deployment is a fresh one that requires an API key (so generated requests may create
and revoke keys without touching the shared `stack`), and the requests carry an admin key.
"""

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

from keel.agents import agent_catalog
from keel.testing.stack import Stack
from tests.system.secured import create_key

_EXAMPLES = 20
_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture
async def keyed(make_stack) -> AsyncIterator[tuple[Stack, str]]:  # type: ignore[no-untyped-def]
    # A rate this test's requests never reach: it checks answers to what they carry, and its
    # last check reads every run it started right after the last operation's burst.
    stack = make_stack(KEEL_AUTH="required", KEEL_API_RATE_PER_S="1000")
    key = (await create_key(stack, "admin", "schemathesis"))["key"]
    await stack.start_worker()
    await stack.start_api()
    yield stack, key


def _pending_reviews(stack: Stack) -> list[str]:
    with sqlite3.connect(stack.db_file) as db:
        return [r for (r,) in db.execute("SELECT id FROM reviews WHERE status = 'pending'")]


def _steer(case: Any, stack: Stack, key: str) -> None:
    """Point some generated requests at real agents and reviews; authenticate all."""
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    case.headers = {**headers, "X-API-Key": key}
    body = case.body
    if case.path == "/v1/runs" and case.method == "POST" and isinstance(body, dict):
        agents = [*sorted(agent_catalog()), body.get("agent")]
        body["agent"] = agents[sum(map(ord, str(body.get("agent")))) % len(agents)]
    review_id = (case.path_parameters or {}).get("review_id")
    if review_id is not None and len(review_id) % 2 == 0:
        pending = _pending_reviews(stack)
        if pending:
            case.path_parameters["review_id"] = pending[len(review_id) % len(pending)]


def test_every_operation_answers_within_its_schema(keyed) -> None:  # type: ignore[no-untyped-def]
    stack, key = keyed
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json")
    started: set[str] = set()
    decided: set[str] = set()
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=_EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            _steer(case, stack, key)
            response = case.call(base_url=stack.api_url, timeout=30)
            case.validate_response(response, checks=_CHECKS)
            if response.status_code < 300 and case.method == "POST":
                if case.path == "/v1/runs":
                    started.add(response.json()["run_id"])
                elif case.path == "/v1/reviews/{review_id}/decision":
                    decided.add(case.path_parameters["review_id"])

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as err:  # every operation's failure, not the first
            failures[operation.label] = str(err)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert started, "no generated request started a run"
    _assert_nothing_half_written(stack, key, started, decided)


def _assert_nothing_half_written(stack: Stack, key: str, started: set[str], decided: set[str]):  # type: ignore[no-untyped-def]
    known = set(agent_catalog())
    with sqlite3.connect(stack.db_file) as db:
        reviews = dict(db.execute("SELECT id, status FROM reviews").fetchall())
        review_runs = {r for (r,) in db.execute("SELECT DISTINCT run_id FROM reviews")}
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30) as http:
        for run_id in sorted(started | review_runs):
            response = http.get(f"/v1/runs/{run_id}")
            assert response.status_code == 200, (run_id, response.text)
            assert response.json()["agent"] in known
    for review_id in decided:
        assert reviews[review_id] != "pending", review_id
