"""Audit sampling on a real stack: answers sent without review are drawn by run id into
the audit queue, reviewers grade them (never their own runs), grades become weighted labels
and the wrong-sent rate, which the API, `keel calibrate` and the metrics report."""

import json
import re
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from cli.devserver import DevServer
from keel.audit import verify_trail
from keel.schemas.audit import AuditEntry
from keel.testing.stack import Stack, start_run, wait_status
from tests.conftest import CONFIDENT, UNSURE
from tests.replays import assert_stack_runs_replay
from tests.system.secured import Secured, create_keys, keel
from workflows.audit_sampling import AUDIT_PATCH, audit_draw

RATE = 0.5


@pytest.fixture(scope="module")
async def audited(
    temporal: DevServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Secured]:
    """A stack requiring keys that samples half the unreviewed answers for audit."""
    escalation = json.dumps({"audit_rate": RATE})
    stack = Stack(
        temporal.address,
        tmp_path_factory.mktemp("audited"),
        {"KEEL_AUTH": "required", "KEEL_ESCALATION": escalation},
    )
    try:
        keys = await create_keys(
            stack, {"admin": "admin", "submitter": "submitter", "reviewer": "reviewer"}
        )
        await stack.start_worker()
        await stack.start_api()
        yield Secured(stack, keys)
    finally:
        stack.stop_all()
    await assert_stack_runs_replay(stack)  # the sampled run and the skipped one


async def _answered(http: httpx.AsyncClient, want_sampled: bool) -> dict[str, Any]:
    """A completed, unreviewed run whose id draws (or does not draw) an audit."""
    for _ in range(30):
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        if (audit_draw(run_id) < RATE) == want_sampled:
            run = await wait_status(http, run_id, {"completed"}, timeout=120)
            assert run["result"]["reviewed"] is False
            return run
    raise AssertionError("30 runs, all drawn the same way")


async def _audits(http: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    page = await http.get("/v1/reviews", params={"kind": "audit", "run_id": run_id})
    return page.raise_for_status().json()["reviews"]


def _problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == f"urn:keel:problem:{code}"


@pytest.mark.timeout(600)
async def test_a_sampled_answer_is_graded_once_by_someone_else_and_becomes_a_label(
    audited: Secured, temporal_client: Client
) -> None:
    async with (
        audited.client("submitter") as submitter,
        audited.client("reviewer") as reviewer,
        audited.client("admin") as admin,
    ):
        skipped = await _answered(submitter, want_sampled=False)
        sampled = await _answered(submitter, want_sampled=True)
        assert await _audits(reviewer, skipped["run_id"]) == []
        [audit] = await _audits(reviewer, sampled["run_id"])
        result = sampled["result"]
        assert (audit["kind"], audit["queue"], audit["status"]) == ("audit", "audit", "pending")
        assert audit["reason"] == "audit" and audit["sampling_rate"] == RATE
        assert audit["question"] == CONFIDENT and audit["proposed_answer"] == result["answer"]
        assert audit["citations"] == result["citations"]
        assert audit["confidence"] == result["confidence"] and audit["grade"] is None
        assert audit["signals"]["confidence"] == result["confidence"]  # the evidence it went on
        # Escalations are listed as before; the audit is no escalation.
        listed = await reviewer.get("/v1/reviews", params={"run_id": sampled["run_id"]})
        assert listed.json()["reviews"] == []

        # No run waits on an audit: it is graded, never decided or claimed.
        decision = {"action": "approve", "action_hash": audit["action_hash"]}
        _problem(
            await reviewer.post(f"/v1/reviews/{audit['id']}/decision", json=decision),
            409,
            "wrong-review-kind",
        )
        _problem(
            await reviewer.post(f"/v1/reviews/{audit['id']}/claim", json={}),
            409,
            "wrong-review-kind",
        )
        grade = {"grade": "wrong", "note": "it names the wrong menu"}
        _problem(
            await submitter.post(f"/v1/reviews/{audit['id']}/grade", json=grade), 403, "forbidden"
        )
        graded = await reviewer.post(f"/v1/reviews/{audit['id']}/grade", json=grade)
        assert graded.status_code == 200, graded.text
        view = graded.json()
        assert (view["status"], view["grade"]) == ("graded", "wrong")
        assert view["comment"] == grade["note"] and view["reviewer"] == "reviewer key"
        again = await reviewer.post(f"/v1/reviews/{audit['id']}/grade", json=grade)
        _problem(again, 409, "review-not-pending")

        # An admin may grade, but not a run the admin submitted.
        own = await _answered(admin, want_sampled=True)
        [own_audit] = await _audits(admin, own["run_id"])
        _problem(
            await admin.post(f"/v1/reviews/{own_audit['id']}/grade", json=grade),
            403,
            "self-approval",
        )

        # An escalation is decided, not graded.
        escalated = (await start_run(submitter, UNSURE))["run_id"]
        pending = await wait_status(submitter, escalated, {"awaiting_review"}, timeout=120)
        review_id = pending["pending_review"]["review_id"]
        _problem(
            await reviewer.post(f"/v1/reviews/{review_id}/grade", json=grade),
            409,
            "wrong-review-kind",
        )

        trail = (await admin.get(f"/v1/runs/{sampled['run_id']}/audit")).json()
        entries = [AuditEntry.model_validate(e) for e in trail["entries"]]
        assert verify_trail(entries) is None
        kinds = [e.kind for e in entries]
        assert (
            kinds.index("audit.sampled")
            < kinds.index("run.finished")
            < kinds.index("review.graded")
        )
        # Temporal anchors the `run.finished` entry; the grade came after the run ended, and
        # the run's signed checkpoint holds it.
        finished = kinds.index("run.finished") + 1
        assert trail["verification"]["verdict"] == "ok"
        assert trail["verification"]["detail"] == (
            f"anchored at entry {finished}; checkpoint at entry {len(entries)}"
        )
        [graded_entry] = [e for e in entries if e.kind == "review.graded"]
        # The key's principal (a key created without one is its own), and the key itself.
        assert graded_entry.actor == audited.keys["reviewer"]["id"]
        assert graded_entry.data["reviewer_key"] == audited.keys["reviewer"]["id"]
        assert graded_entry.data["grade"] == "wrong" and graded_entry.data["sampling_rate"] == RATE

        quality = (await reviewer.get("/v1/agents/support/quality")).json()
        assert (quality["graded"], quality["wrong"], quality["audit_rate"]) == (1, 1, RATE)
        assert quality["wrong_sent_rate"] == 1.0 and quality["upper"] == 1.0
        assert quality["lower"] == pytest.approx(0.025)
        _problem(await reviewer.get("/v1/agents/nobody/quality"), 404, "unknown-agent")
        _problem(await submitter.get("/v1/agents/support/quality"), 403, "forbidden")
        metrics = (await admin.get("/metrics")).text  # /metrics takes an operator or admin
        for bound in ("estimate", "lower", "upper"):
            gauge = rf'keel_wrong_sent_rate{{agent="support",bound="{bound}"[^}}]*}} (\S+)'
            found = re.search(gauge, metrics)
            assert found is not None, metrics
            assert float(found[1]) == pytest.approx(
                quality["wrong_sent_rate" if bound == "estimate" else bound]
            )

    with sqlite3.connect(audited.stack.db_file) as db:
        labels = db.execute(
            "SELECT review_id, source, weight, verdict, needed_person FROM labels"
        ).fetchall()
    assert (audit["id"], "audit", 1 / RATE, "wrong", 1) in labels

    # Deleting the grade, appended after the run ended, is found by the checkpoint.
    with sqlite3.connect(audited.stack.db_file) as db:
        db.execute(
            "DELETE FROM audit WHERE run_id = ? AND kind = 'review.graded'", (sampled["run_id"],)
        )
    verified = await keel(audited.stack, "audit", "verify", sampled["run_id"])
    assert verified.returncode == 1
    assert (
        f"TRUNCATED   {sampled['run_id']}  {len(entries) - 1} entries; entry {len(entries)} is "
        f"the one the signed checkpoint holds; the trail ends at {len(entries) - 1}"
    ) in verified.stdout

    # Only the sampled run took the patched path (both replay: the `audited` fixture checks).
    history = await temporal_client.get_workflow_handle(sampled["run_id"]).fetch_history()
    assert any(AUDIT_PATCH.encode() in e.SerializeToString() for e in history.events)
    skipped_history = await temporal_client.get_workflow_handle(skipped["run_id"]).fetch_history()
    assert not any(AUDIT_PATCH.encode() in e.SerializeToString() for e in skipped_history.events)


@pytest.mark.timeout(600)
async def test_keel_reviews_audit_lists_audits_and_keel_grade_grades_one(
    audited: Secured,
) -> None:
    async with audited.client("submitter") as submitter:
        run = await _answered(submitter, want_sampled=True)
    as_reviewer = {"KEEL_API_KEY": audited.keys["reviewer"]["key"]}
    listed = await keel(audited.stack, "reviews", "--audit", **as_reviewer)
    assert listed.returncode == 0, listed.stderr
    review_id = f"{run['run_id']}.audit"
    assert f"{review_id}  audit (p=0.5)  pending" in listed.stdout
    assert f"keel grade {review_id} correct|wrong" in listed.stdout

    done = await keel(audited.stack, "grade", review_id, "correct", "--note", "fine", **as_reviewer)
    assert done.returncode == 0, done.stderr
    assert f"audit {review_id}: graded correct" in done.stdout
    again = await keel(audited.stack, "grade", review_id, "wrong", **as_reviewer)
    assert again.returncode == 1 and "graded already" in again.stderr
