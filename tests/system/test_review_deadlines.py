"""Review deadlines: each queue's SLA path is taken by a workflow timer, workers or not.

All workers are stopped before the deadlines and started after them: the timers fired on
the server meanwhile, and the first worker back takes each queue's path — reject, approve
if low risk (else reject), or move to an escalation queue with a new deadline.
"""

import asyncio
import json
import signal
import sqlite3
from datetime import UTC, datetime

import httpx

from keel.testing.stack import start_run, wait_status
from tests.conftest import CONFIDENT, UNSURE

ESCALATION = {
    "agents": {"support": {"queue": "triage"}, "assistant": {"queue": "tickets"}},
    "reason_queues": {"pii": "security"},
    "queues": {
        "triage": {"sla_s": 45, "on_expiry": "escalate", "escalate_to": "seniors"},
        "seniors": {"sla_s": 2, "on_expiry": "approve_if_low_risk", "low_risk_confidence": 0.0},
        "tickets": {"sla_s": 45, "on_expiry": "approve_if_low_risk"},
        "security": {"sla_s": 45, "on_expiry": "reject"},
    },
}


async def _pending(http: httpx.AsyncClient, run_id: str) -> dict:
    view = await wait_status(http, run_id, {"awaiting_review"}, timeout=60)
    return (await http.get(f"/v1/reviews/{view['pending_review']['review_id']}")).json()


async def test_deadline_paths_are_taken_although_every_worker_was_down(make_stack):
    stack = make_stack(KEEL_ESCALATION=json.dumps(ESCALATION))
    worker = await stack.start_worker()
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        # Warm the worker up (its guards load on first use), so the three reviews below open
        # close together, well before their deadlines.
        await wait_status(http, (await start_run(http, CONFIDENT))["run_id"], {"completed"})
        ticket_request = {"agent": "assistant", "input": "Please open a ticket: sync is broken"}
        started = await asyncio.gather(
            start_run(http, UNSURE),
            start_run(http, "Reset my password, I am bo@example.com"),
            http.post("/v1/runs", json=ticket_request),
        )
        unsure, pii = started[0]["run_id"], started[1]["run_id"]
        ticket = started[2].json()["run_id"]
        runs = (unsure, pii, ticket)
        reviews = dict(
            zip(runs, await asyncio.gather(*(_pending(http, r) for r in runs)), strict=True)
        )
        worker.send_signal(signal.SIGTERM)
        worker.wait()
        stopped = datetime.now(UTC)

        assert [reviews[r]["queue"] for r in (unsure, pii, ticket)] == [
            "triage",
            "security",
            "tickets",
        ]
        deadlines = [datetime.fromisoformat(r["deadline"]) for r in reviews.values()]
        assert stopped < min(deadlines), "a deadline passed before the worker stopped"
        await asyncio.sleep((max(deadlines) - datetime.now(UTC)).total_seconds() + 1)
        # Past every deadline with no worker: nothing has moved yet.
        for run, review in reviews.items():
            row = (await http.get(f"/v1/reviews/{review['id']}")).json()
            assert row["status"] == "pending" and row["queue"] == review["queue"], run

        await stack.start_worker()

        rejected = await wait_status(http, pii, {"rejected"}, timeout=60)
        assert rejected["result"]["answer"] is None
        row = (await http.get(f"/v1/reviews/{reviews[pii]['id']}")).json()
        assert (row["status"], row["deadline_path"]) == ("expired", "reject")

        # A tool call is never low risk: refused at the deadline, and no ticket is written.
        done = await wait_status(http, ticket, {"completed"}, timeout=60)
        assert "refused" in done["result"]["answer"]
        row = (await http.get(f"/v1/reviews/{reviews[ticket]['id']}")).json()
        assert (row["status"], row["deadline_path"]) == ("expired", "approve_if_low_risk")
        with sqlite3.connect(stack.db_file) as db:
            assert db.execute("SELECT count(*) FROM tickets").fetchone() == (0,)

        # Moved to the escalation queue with a new deadline; there, approved as low risk.
        async def moved() -> dict:
            while True:
                row = (await http.get(f"/v1/reviews/{reviews[unsure]['id']}")).json()
                if row["queue"] == "seniors" or row["status"] != "pending":
                    return row
                await asyncio.sleep(0.1)

        row = await asyncio.wait_for(moved(), 60)
        assert row["queue"] == "seniors" and row["deadline_path"] in (
            "escalate",
            "approve_if_low_risk",
        )
        assert datetime.fromisoformat(row["deadline"]) > datetime.fromisoformat(
            reviews[unsure]["deadline"]
        )
        finished = await wait_status(http, unsure, {"completed"}, timeout=60)
        assert finished["result"]["answer"] == reviews[unsure]["proposed_answer"]
        row = (await http.get(f"/v1/reviews/{reviews[unsure]['id']}")).json()
        assert (row["status"], row["queue"], row["deadline_path"]) == (
            "approved",
            "seniors",
            "approve_if_low_risk",
        )
        assert row["reviewer"] is None and "deadline" in row["comment"]
