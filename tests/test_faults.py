"""Faults a real deployment meets: the Temporal server restarting, a worker dying mid-call."""

import asyncio
import json
import signal

import httpx

from keel.devserver import DevServer, free_port
from keel.testing.replies import Reply, Usage
from keel.testing.server import WireServer
from tests.conftest import CONFIDENT, UNSURE
from tests.stack import Stack, start_run, wait_status


async def test_temporal_restarting_mid_run_loses_nothing(tmp_path):
    server = DevServer(
        db_file=tmp_path / "temporal.db",
        port=free_port(),
        ui_port=None,
        log_file=tmp_path / "server.log",
    )
    await server.start()
    stack = Stack(server.address, tmp_path / "keel")
    try:
        await stack.start_worker()
        await stack.start_api()
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            run_id = (await start_run(http, UNSURE))["run_id"]
            review = (await wait_status(http, run_id, {"awaiting_review"}))["pending_review"]

            await server.stop()  # the whole server, mid-run; same database file on restart
            await server.start()

            again = await wait_status(http, run_id, {"awaiting_review"}, timeout=60)
            assert again["pending_review"]["review_id"] == review["review_id"]
            decided = await http.post(
                f"/v1/reviews/{review['review_id']}/decision", json={"action": "approve"}
            )
            assert decided.status_code == 200, decided.text
            done = await wait_status(http, run_id, {"completed"}, timeout=60)
        assert done["result"]["answer"] == review["proposed_answer"]
    finally:
        stack.stop_all()
        await server.stop()


async def test_worker_killed_during_a_model_call_bills_it_once(make_stack):
    usage = Usage(input_tokens=1000, output_tokens=100)
    async with WireServer() as wire:
        # classify answers at once; the answer call is slow, and the worker dies meanwhile.
        wire.push(
            Reply(text="account", usage=usage, confidence=0.9),
            Reply.slow(30.0, then=Reply(text="never delivered", usage=usage)),
            protocol="openai",
        )
        wire.script.responder = lambda request: Reply(
            text="Click Forgot password.", usage=usage, confidence=0.9
        )
        deployments = {
            "gpt": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": wire.openai_base_url,
                "price": {"input": 1.0, "output": 2.0},
                "timeout_s": 2,
            }
        }
        stack = make_stack(
            KEEL_DEPLOYMENTS=json.dumps(deployments),
            KEEL_ROUTES=json.dumps({"default": {"candidates": ["gpt"]}}),
            OPENAI_API_KEY="sk-test",
        )
        worker = await stack.start_worker()
        await stack.start_api()
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            run_id = (await start_run(http, CONFIDENT))["run_id"]
            for _ in range(300):  # until the slow answer call has reached the provider
                if len(wire.requests) == 2:
                    break
                await asyncio.sleep(0.05)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            await stack.start_worker()
            done = await wait_status(http, run_id, {"completed", "awaiting_review"}, timeout=60)
        # The lost attempt was retried once its timeout passed; only answered calls are billed.
        assert len(wire.requests) == 3
        steps = [e["step"] for e in done["cost"]["entries"]]
        assert steps == ["classify", "answer"]
        assert done["cost"]["total_usd"] == 2 * (1000 * 1.0 + 100 * 2.0) / 1e6
