"""Malformed and oversized requests: each gets a 4xx problem+json, and nothing starts.

The API is the real `keel api` process of the `stack` fixture; every case is sent over
real HTTP as a careless or hostile client would send it.
"""

import re

import httpx
import pytest

from api.app import create_app
from keel.json_depth import MAX_JSON_DEPTH
from keel.settings import Settings
from keel.testing.stack import eventually
from tests.conftest import CONFIDENT

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"urn:keel:problem:{code}", body
    assert body["status"] == status and body["detail"]
    return body


def _nested(depth: int) -> bytes:
    """`{"agent": "support", "input": {"question": [[[…]]]}}`, `depth` lists deep."""
    return b'{"agent": "support", "input": {"question": ' + b"[" * depth + b"]" * depth + b"}}"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"agent": "support", "input": "How do I reset', "application/json"),
        (b"", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b"null", "application/json"),
        (b'{"agent": "support", "input": "\xff\xfe broken utf-8"}', "application/json"),
        (b'{"agent": "support", "input": "How do I reset my password?"}', "text/plain"),
        (b"agent=support&input=hello", "application/x-www-form-urlencoded"),
        (b'{"agent": "support", "input": "How do I reset my password?"}', ""),
    ],
    ids=[
        "not-json",
        "truncated-json",
        "empty-body",
        "array",
        "null",
        "bad-utf8",
        "text-plain",
        "form",
        "no-content-type",
    ],
)
async def test_malformed_start_bodies_are_422(http, content, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = await http.post("/v1/runs", content=content, headers=headers)
    if content.startswith(b'{"agent": "support", "input": "\xff'):
        _problem(response, 400, "bad-request")  # not even text: the body cannot be parsed
    else:
        _problem(response, 422, "validation-error")


def _every_route() -> list[tuple[str, str]]:
    """Each JSON route, path parameters filled: every operation of the app's OpenAPI schema
    (a route added later too), and the app's own routes outside it (/metrics, /healthz)."""
    app = create_app(Settings())
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    for route in app.routes:
        methods: set[str] = getattr(route, "methods", None) or set()
        routes |= {(method, getattr(route, "path", "")) for method in methods}
    return sorted((m, re.sub(r"\{[^}]+\}", "x", path)) for m, path in routes if m != "HEAD")


async def test_json_nested_too_deep_is_400_on_every_route_before_it_is_read(http):
    routes = _every_route()
    assert ("POST", "/v1/collections/x/documents") in routes and ("GET", "/metrics") in routes
    for method, path in routes:
        for content_type in ("application/json", "application/merge-patch+json"):
            response = await http.request(
                method, path, content=_nested(5_000), headers={"content-type": content_type}
            )
            problem = _problem(response, 400, "body-too-deep")
            assert "nests 5002 levels" in problem["detail"], (method, path)


async def test_nesting_up_to_the_limit_is_read(http):
    # `_nested(n)` nests n + 2 deep: the limit itself is parsed (and is not a question).
    for lists, status, code in (
        (MAX_JSON_DEPTH - 2, 422, "invalid-input"),
        (MAX_JSON_DEPTH - 1, 400, "body-too-deep"),
        (100_000, 400, "body-too-deep"),
    ):
        response = await http.post(
            "/v1/runs", content=_nested(lists), headers={"content-type": "application/json"}
        )
        _problem(response, status, code)
    # The API still answers, and still starts good runs.
    ok = await http.post("/v1/runs", json={"agent": "support", "input": CONFIDENT})
    assert ok.status_code == 202, ok.text


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"agent": "a" * 101, "input": "hi there"}, 422, "validation-error", "agent"),
        ({"agent": "", "input": "hi there"}, 422, "validation-error", "agent"),
        ({"agent": "support", "input": "x" * 900_000}, 422, "invalid-input", "input.question"),
        ({"agent": "support", "input": {"question": 7}}, 422, "invalid-input", "input.question"),
        ({"agent": "support", "input": "hi"}, 422, "invalid-input", "input.question"),
        (
            {"agent": "support", "input": CONFIDENT, "idempotency_key": "k" * 201},
            422,
            "validation-error",
            "idempotency_key",
        ),
        (
            {"agent": "support", "input": CONFIDENT, "idempotency_key": ""},
            422,
            "validation-error",
            "idempotency_key",
        ),
        ({"agent": "support", "input": 42}, 422, "validation-error", "input"),
        ({"agent": "support", "input": CONFIDENT, "extra": "x" * 900_000}, 202, None, None),
    ],
    ids=[
        "long-agent",
        "empty-agent",
        "huge-question",
        "question-not-text",
        "short-question",
        "long-key",
        "empty-key",
        "input-not-object",
        "huge-unknown-field",
    ],
)
async def test_out_of_range_fields_name_the_field(http, body, status, code, field):
    response = await http.post("/v1/runs", json=body)
    if code is None:  # unknown fields are ignored, within the body limit
        assert response.status_code == status, response.text
        return
    problem = _problem(response, status, code)
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem


async def test_a_body_just_over_the_limit_is_413_and_starts_nothing(http):
    # The stack's limit is the default, 1,000,000 bytes.
    question = "Q" * 1_000_100
    for send in (
        lambda: http.post("/v1/runs", json={"agent": "support", "input": question}),
        lambda: http.post("/v1/reviews/x/decision", json={"action": "edit", "answer": question}),
    ):
        _problem(await send(), 413, "payload-too-large")


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/v1/runs", {"limit": "0"}, 422, "validation-error"),
        ("/v1/runs", {"limit": "101"}, 422, "validation-error"),
        ("/v1/runs", {"limit": "ten"}, 422, "validation-error"),
        ("/v1/runs", {"limit": "1e3"}, 422, "validation-error"),
        ("/v1/runs", {"status": "done"}, 422, "validation-error"),
        ("/v1/runs", {"agent": "x" * 5000}, 404, "unknown-agent"),
        ("/v1/runs", {"agent": "support' OR '1'='1"}, 404, "unknown-agent"),
        ("/v1/runs", {"page_token": "A" * 10_000}, 400, "bad-page-token"),
        ("/v1/runs", {"page_token": ""}, 400, "bad-page-token"),
        ("/v1/reviews", {"limit": "-1"}, 422, "validation-error"),
        ("/v1/reviews", {"offset": "-5"}, 422, "validation-error"),
        ("/v1/reviews", {"offset": "99999999999999999999999"}, 422, "validation-error"),
        ("/v1/reviews", {"status": "maybe"}, 422, "validation-error"),
    ],
)
async def test_bad_query_parameters(http, path, params, status, code):
    _problem(await http.get(path, params=params), status, code)


async def test_odd_but_valid_ids_are_404_not_500(http):
    for run_id in ("%00", "a" * 3000, "run-\u00e9\u4e2d", "..", "run%2Fx"):
        response = await http.get(f"/v1/runs/{run_id}")
        assert response.status_code in (404, 422), (run_id, response.text)
        assert response.headers["content-type"] == PROBLEM
    for review_id in ("%00", "r" * 3000, "\u00e9"):
        response = await http.get(f"/v1/reviews/{review_id}")
        assert response.status_code == 404, (review_id, response.text)


async def test_unpaired_surrogates_and_nul_are_refused_or_stored_faithfully(http):
    for question in ("What is \ud800 this?", "How do I\u0000 reset my password?"):
        literal = _json_escaped(question)
        raw = f'{{"agent": "support", "input": {{"question": {literal}}}}}'.encode()
        response = await http.post(
            "/v1/runs", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code in (202, 422), response.text
        if response.status_code == 202:
            url = f"/v1/runs/{response.json()['run_id']}"

            async def readable(url: str = url) -> bool:
                return (await http.get(url)).status_code == 200

            await eventually(readable)
        else:
            assert response.headers["content-type"] == PROBLEM


def _json_escaped(text: str) -> str:
    """A JSON string literal that keeps lone surrogates as `\\uXXXX` escapes."""
    out = []
    for ch in text:
        code = ord(ch)
        out.append(ch if 0x20 <= code < 0x7F and ch not in '"\\' else f"\\u{code:04x}")
    return '"' + "".join(out) + '"'
