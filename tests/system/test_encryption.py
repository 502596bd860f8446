"""Payload encryption on real processes: customer data is ciphertext in Temporal's history and
the payload store, readable with the key, through the codec server, and across a key rotation."""

import base64
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from playwright.async_api import async_playwright, expect
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter

from cli.devserver import DevServer
from keel.encryption import ENCODING, KEY_ID, EncryptionCodec
from keel.schemas.encryption import PayloadKeyring
from keel.settings import Settings
from keel.temporal.connection import keel_data_converter
from keel.testing.stack import Stack, approve_and_finish, payloads_in, start_run, wait_status
from tests.conftest import UNSURE
from tests.system.secured import Secured, create_keys, secured_stack
from tests.system.test_auth import assert_problem
from tests.system.test_review_page import CHROMIUM, LAUNCH_ARGS

EMAIL = "jane.doe@example.com"
QUESTION = f"How do I reset my password? Write to me at {EMAIL}"
UI_ORIGIN = "http://127.0.0.1:8233"  # the embedded Temporal UI's, the default CORS origin


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _keyring(current: str, keys: dict[str, str]) -> str:
    return json.dumps({"current": current, "keys": keys})


KEYS = {"2026-a": _key()}


@pytest.fixture(scope="module")
async def encrypted(
    temporal: DevServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Secured]:
    """A stack requiring API keys, encrypting under `KEYS`, offloading payloads from 1 KiB."""
    async with secured_stack(
        temporal,
        tmp_path_factory.mktemp("encrypted"),
        KEEL_PAYLOAD_KEYRING=_keyring("2026-a", KEYS),
        KEEL_PAYLOAD_OFFLOAD_BYTES="1024",
    ) as deployment:
        yield deployment


@pytest.fixture(scope="module")
async def raw(temporal: DevServer) -> Client:
    """A client with no codec: what anyone reading Temporal directly sees."""
    return await Client.connect(temporal.address)


@pytest.fixture(scope="module")
async def finished_run(encrypted: Secured) -> str:
    """A run whose question has an e-mail address: held for review (PII), approved, done."""
    async with encrypted.client("submitter") as submitter, encrypted.client("reviewer") as rev:
        run_id = (await start_run(submitter, QUESTION))["run_id"]
        view = await wait_status(submitter, run_id, {"awaiting_review", "completed"})
        if view["status"] == "awaiting_review":
            review = view["pending_review"]
            decided = await rev.post(
                f"/v1/reviews/{review['review_id']}/decision",
                json={"action": "approve", "action_hash": review["action_hash"]},
            )
            assert decided.status_code == 200, decided.text
        await wait_status(submitter, run_id, {"completed"})
    return run_id


def _converter(stack: Stack) -> DataConverter:
    """The data converter of the stack's processes (its keyring, its payload store)."""
    ring = PayloadKeyring.model_validate_json(stack.settings["KEEL_PAYLOAD_KEYRING"])
    return keel_data_converter(Settings(data_dir=stack.data_dir, payload_keyring=ring))


def _started_input(history: WorkflowHistory) -> Payload:
    return history.events[0].workflow_execution_started_event_attributes.input.payloads[0]


async def test_the_address_is_nowhere_in_clear_in_history_or_payload_store(
    encrypted: Secured, finished_run: str, raw: Client
):
    history = await raw.get_workflow_handle(finished_run).fetch_history()
    assert EMAIL.encode() not in b"".join(e.SerializeToString() for e in history.events)
    assert EMAIL not in history.to_json()
    payloads = payloads_in(*history.events)
    assert {p.metadata[KEY_ID] for p in payloads if p.metadata["encoding"] == ENCODING} == {
        b"2026-a"
    }
    # In clear: references to the payload store (a digest of ciphertext), search attributes
    # (Temporal indexes them), and markers' own records (a patch's id; a local activity's
    # type and times, written by the SDK's core).
    for event in history.events:
        for payload in payloads_in(event):
            encoding = payload.metadata["encoding"]
            if encoding == b"json/protobuf":
                assert payload.metadata["messageType"].endswith(b".ExternalStorageReference")
            elif encoding == b"json/plain" and b"type" not in payload.metadata:
                assert event.HasField("marker_recorded_event_attributes"), event
            else:
                assert encoding == ENCODING or b"type" in payload.metadata, payload
    stored = [p for p in (encrypted.stack.data_dir / "payloads").rglob("*") if p.is_file()]
    assert stored, "nothing went to the payload store"
    assert not [p for p in stored if EMAIL.encode() in p.read_bytes()]


async def test_the_same_history_reads_in_clear_with_the_key(
    encrypted: Secured, finished_run: str, raw: Client
):
    history = await raw.get_workflow_handle(finished_run).fetch_history()
    converter = _converter(encrypted.stack)
    [run_input] = await converter.decode([_started_input(history)])
    assert run_input["input"]["question"] == QUESTION
    [summary] = await converter.decode([history.events[0].user_metadata.summary], [str])
    assert EMAIL in summary
    # So does the API, and the run's events (summaries decrypted by the API's client).
    async with encrypted.client("operator") as operator:
        assert (await operator.get(f"/v1/runs/{finished_run}")).json()["status"] == "completed"
        async with operator.stream("GET", f"/v1/runs/{finished_run}/events") as events:
            lines = [line async for line in events.aiter_lines() if line.startswith("data: ")]
    started = json.loads(lines[0].removeprefix("data: "))
    assert started["type"] == "run.started" and started["detail"] == f"support: {QUESTION}"


async def test_the_codec_server_decodes_for_operators_only(
    encrypted: Secured, finished_run: str, raw: Client
):
    history = await raw.get_workflow_handle(finished_run).fetch_history()
    body = {"payloads": [json_format.MessageToDict(_started_input(history))]}
    headers = {"X-Namespace": "default", "Origin": UI_ORIGIN}
    for role in ("operator", "admin"):
        async with encrypted.client(role) as http:
            answer = await http.post("/codec/decode", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == UI_ORIGIN
        [decoded] = answer.json()["payloads"]
        assert base64.b64decode(decoded["metadata"]["encoding"]) == b"json/plain"
        assert EMAIL in base64.b64decode(decoded["data"]).decode()
    for role, status, code in (("submitter", 403, "forbidden"), (None, 401, "unauthorized")):
        async with encrypted.client(role) as http:
            refused = await http.post("/codec/decode", json=body, headers=headers)
        assert_problem(refused, status, code)
        assert EMAIL not in refused.text

    # Encode and decode again: a round trip under the current key.
    async with encrypted.client("operator") as operator:
        clear = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IngiCg=="}]}
        sealed = (await operator.post("/codec/encode", json=clear)).json()
        assert base64.b64decode(sealed["payloads"][0]["metadata"][KEY_ID]) == b"2026-a"
        assert (await operator.post("/codec/decode", json=sealed)).json() == clear


async def test_a_payload_under_an_unknown_key_is_named(encrypted: Secured):
    stranger = PayloadKeyring.model_validate({"current": "gone", "keys": {"gone": _key()}})
    [sealed] = await EncryptionCodec(stranger).encode([Payload(data=b"x")])
    body = {"payloads": [json_format.MessageToDict(sealed)]}
    async with encrypted.client("operator") as operator:
        refused = await operator.post("/codec/decode", json=body)
    problem = assert_problem(refused, 422, "unknown-payload-key")
    assert "'gone'" in problem["detail"]


async def test_cors_answers_the_temporal_ui_only_and_only_on_the_codec_server(
    encrypted: Secured,
):
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    async with encrypted.client(None) as http:
        ui = await http.options("/codec/decode", headers={"Origin": UI_ORIGIN, **preflight})
        assert ui.status_code == 200
        assert ui.headers["access-control-allow-origin"] == UI_ORIGIN
        assert "x-namespace" in ui.headers["access-control-allow-headers"].lower()
        other = await http.options(
            "/codec/decode", headers={"Origin": "http://evil.example", **preflight}
        )
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
        rest = await http.options("/v1/runs", headers={"Origin": UI_ORIGIN, **preflight})
        assert "access-control-allow-origin" not in rest.headers


async def test_after_a_rotation_a_run_in_flight_goes_on_under_the_new_key(
    make_stack: Any, raw: Client
):
    stack: Stack = make_stack(KEEL_PAYLOAD_KEYRING=_keyring("old", {"old": (old := _key())}))
    await stack.start_worker()
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        run_id = (await start_run(http, UNSURE))["run_id"]
        review = (await wait_status(http, run_id, {"awaiting_review"}))["pending_review"]
    stack.stop_all()

    # A new key encrypts from now on; the old one stays to read what it encrypted.
    stack.settings["KEEL_PAYLOAD_KEYRING"] = _keyring("new", {"old": old, "new": _key()})
    await stack.start_worker()
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        assert (await http.get(f"/v1/runs/{run_id}")).json()["status"] == "awaiting_review"
        await approve_and_finish(http, review)
        later = (await start_run(http, UNSURE))["run_id"]
        await wait_status(http, later, {"awaiting_review"})

    def key_ids(history: WorkflowHistory) -> set[bytes]:
        return {
            p.metadata[KEY_ID]
            for p in payloads_in(*history.events)
            if p.metadata.get("encoding") == ENCODING
        }

    assert key_ids(await raw.get_workflow_handle(run_id).fetch_history()) == {b"old", b"new"}
    assert key_ids(await raw.get_workflow_handle(later).fetch_history()) == {b"new"}


@pytest.mark.timeout(300)
async def test_an_operator_signed_in_once_decodes_from_the_ui_page_in_a_real_browser(
    temporal: DevServer,
    tmp_path: Path,
    encrypted: Secured,
    finished_run: str,
    raw: Client,
):
    """The Temporal UI sends no key: the operator signs in at `/codec`, and the UI's page then
    decodes with the cookie (what the UI does with "include cross-origin credentials" on)."""
    history = await raw.get_workflow_handle(finished_run).fetch_history()
    body = {"payloads": [json_format.MessageToDict(_started_input(history))]}
    with _static_site(tmp_path) as ui_origin:
        stack = Stack(
            temporal.address,
            tmp_path / "api",
            {
                "KEEL_AUTH": "required",
                "KEEL_PAYLOAD_KEYRING": _keyring("2026-a", KEYS),
                "KEEL_CODEC_ORIGINS": json.dumps([ui_origin]),
            },
        )
        keys = await create_keys(stack, {"operator": "operator", "submitter": "submitter"})
        await stack.start_api()
        decode = f"""async (body) => {{
            const r = await fetch("{stack.api_url}/codec/decode", {{
                method: "POST", credentials: "include", body: JSON.stringify(body),
                headers: {{"Content-Type": "application/json", "X-Namespace": "default"}},
            }});
            return [r.status, await r.text()];
        }}"""
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
                page = await browser.new_page()
                await page.goto(ui_origin)
                status, _ = await page.evaluate(decode, body)
                assert status == 401  # not signed in: the UI shows ciphertext

                await page.goto(f"{stack.api_url}/codec")
                await page.get_by_label("Operator or admin key").fill(keys["submitter"]["key"])
                await page.get_by_role("button", name="Sign in").click()
                await expect(page.locator("#notice")).to_contain_text("role 'submitter' may not")
                await page.get_by_label("Operator or admin key").fill(keys["operator"]["key"])
                await page.get_by_role("button", name="Sign in").click()
                await expect(page.locator("#notice")).to_contain_text("(operator) until")
                cookie = next(c for c in await page.context.cookies() if c["name"] == "keel_codec")
                assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
                assert cookie["path"] == "/codec"

                await page.goto(ui_origin)
                status, text = await page.evaluate(decode, body)
                assert status == 200, text
                [decoded] = json.loads(text)["payloads"]
                assert EMAIL in base64.b64decode(decoded["data"]).decode()

                await page.goto(f"{stack.api_url}/codec")
                await page.get_by_role("button", name="Sign out").click()
                await expect(page.locator("#notice")).to_have_text("Signed out.")
                await page.goto(ui_origin)
                status, _ = await page.evaluate(decode, body)
                assert status == 401
                await browser.close()
        finally:
            stack.stop_all()


@contextmanager
def _static_site(root: Path) -> Iterator[str]:
    """An empty page served on a free loopback port, standing for the Temporal UI: its origin."""
    (root / "index.html").write_text("<!doctype html><title>UI</title>")
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
