"""Faults a real deployment meets: the Temporal server restarting, a worker dying mid-call.

Each case asserts what must survive: the run finishes, nothing that completed runs again
(the step journal), no model call is billed twice (the ledger), no review is lost.
"""

import asyncio
import signal
import sqlite3
from collections import Counter

import httpx

from cli.devserver import DevServer
from keel.net import free_port
from keel.testing.replies import Reply, Usage
from keel.testing.server import WireServer
from keel.testing.stack import (
    Stack,
    eventually,
    hang_the_answer,
    openai_route,
    start_run,
    wait_status,
)
from tests.conftest import CONFIDENT, UNSURE


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
                f"/v1/reviews/{review['review_id']}/decision",
                json={"action": "approve", "action_hash": review["action_hash"]},
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
        hang_the_answer(wire, usage, 30.0)  # the worker dies while the answer call hangs
        stack = make_stack(**openai_route(wire, timeout_s=2))
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
        assert steps == ["classify", "answer", "verify"]
        assert done["cost"]["total_usd"] == 2 * (1000 * 1.0 + 100 * 2.0) / 1e6


class _HangingFirstRequest:
    """An HTTP server whose first request never gets an answer; later ones get 200 at once."""

    def __init__(self) -> None:
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._hung: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/orders/7"

    async def __aenter__(self) -> "_HangingFirstRequest":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._hung:
            writer.close()
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.requests += 1
        if self.requests == 1:
            self._hung.append(writer)  # the worker that sent it is killed meanwhile
            return
        body = b"order 7: shipped"
        head = f"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {len(body)}\r\n"
        writer.write(head.encode() + b"connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()


def _journal(db_file, run_id: str) -> Counter[str]:  # type: ignore[no-untyped-def]
    with sqlite3.connect(db_file) as db:
        rows = db.execute(
            "SELECT activity FROM steps WHERE run_id = ? AND outcome = 'completed'", (run_id,)
        ).fetchall()
    return Counter(activity for (activity,) in rows)


async def test_worker_killed_during_a_tool_call_opens_one_ticket(make_stack):
    usage = Usage(input_tokens=100, output_tokens=10)
    async with WireServer() as wire, _HangingFirstRequest() as shop:
        # One model turn asks for two tools at once: a ticket to approve, and a slow fetch.
        ticket = {"subject": "Order 7 late", "description": "Where is order 7?"}
        wire.push(
            Reply(
                tool_calls=(
                    *Reply.tool_call("create_ticket", ticket).tool_calls,
                    *Reply.tool_call("http_get", {"url": shop.url}).tool_calls,
                ),
                usage=usage,
            ),
            Reply(text="Ticket opened; order 7 has shipped.", usage=usage),
            protocol="openai",
        )
        stack = make_stack(
            **openai_route(wire),
            KEEL_HTTP_GET_ALLOW_HOSTS='["127.0.0.1"]',
            KEEL_HTTP_GET_ALLOW_PRIVATE="true",
        )
        worker = await stack.start_worker()
        await stack.start_api()
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            body = {"agent": "assistant", "input": {"message": "Order 7 is late, open a ticket"}}
            run_id = (await http.post("/v1/runs", json=body)).json()["run_id"]
            approved = []
            # A reviewer approves what the run asks (the ticket; the guards may ask about
            # more) until the ticket's activity has finished (journaled) and the fetch
            # hangs: then the worker dies.
            while not (_journal(stack.db_file, run_id)["tool.create_ticket"] and shop.requests):
                view = await wait_status(http, run_id, {"awaiting_review", "running"})
                review = view["pending_review"]
                if review is None or review["review_id"] in approved:
                    await asyncio.sleep(0.1)
                    continue
                decided = await http.post(
                    f"/v1/reviews/{review['review_id']}/decision",
                    json={"action": "approve", "action_hash": review["action_hash"]},
                )
                assert decided.status_code == 200, decided.text
                approved.append(review["review_id"])
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            await stack.start_worker()
            done = await wait_status(http, run_id, {"completed"}, timeout=60)
            reviews = (await http.get("/v1/reviews", params={"run_id": run_id})).json()

    assert done["result"]["answer"] == "Ticket opened; order 7 has shipped."
    assert shop.requests == 2  # the fetch was retried on the new worker
    with sqlite3.connect(stack.db_file) as db:
        tickets = db.execute("SELECT subject FROM tickets WHERE run_id = ?", (run_id,)).fetchall()
    assert tickets == [("Order 7 late",)]
    # Each model turn was asked and billed once; the one review was decided once.
    assert len(wire.requests) == 2
    assert [e["step"] for e in done["cost"]["entries"]] == ["model-0", "model-1"]
    assert [(r["id"], r["status"]) for r in reviews["reviews"]] == [
        (review_id, "approved") for review_id in approved
    ]

    async def journaled() -> bool:
        steps = _journal(stack.db_file, run_id)
        return steps["tool.http_get"] == 1 and steps["model.call"] == 2

    await eventually(journaled, timeout=5)
    steps = _journal(stack.db_file, run_id)
    assert steps["tool.create_ticket"] == 1, steps
    assert steps["review.open"] == steps["review.close"] == len(approved), steps
