"""The `keel` command, run as a user runs it, against the suite's API and worker."""

import asyncio
import json
import re
import subprocess
import sys

from keel.net import free_port
from keel.testing.stack import KEEL, Stack, eventually
from tests.conftest import CONFIDENT, UNSURE


async def keel(
    stack: Stack, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    process = await asyncio.create_subprocess_exec(
        KEEL,
        *args,
        env={**stack.env(), **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return subprocess.CompletedProcess(args, process.returncode or 0, out.decode(), err.decode())


async def test_run_wait_prints_answer_citations_and_ui_link(stack):
    done = await keel(stack, "run", "support", CONFIDENT, "--wait")
    assert done.returncode == 0, done.stderr
    assert "status   completed" in done.stdout
    assert "Forgot password" in done.stdout
    assert "cites  reset-password#" in done.stdout
    run_id = re.search(r"^run\s+(\S+)", done.stdout, re.M).group(1)
    assert f"/workflows/{run_id}" in done.stdout

    shown = await keel(stack, "show", run_id)
    assert "status   completed" in shown.stdout and f"/workflows/{run_id}" in shown.stdout
    assert "cost     $0.000000 over 3 model call(s)" in shown.stdout  # classify, answer, verify
    assert "answer     local/extractive-bm25" in shown.stdout

    async def listed() -> bool:  # the list is a visibility query, which catches up shortly
        return run_id in (await keel(stack, "runs", "--status", "completed")).stdout

    await eventually(listed)


async def test_review_flow_from_the_command_line(stack):
    waiting = await keel(stack, "--json", "run", "support", UNSURE, "--wait")
    run = json.loads(waiting.stdout)
    assert run["status"] == "awaiting_review"
    review_id = run["pending_review"]["review_id"]

    reviews = await keel(stack, "reviews")
    assert review_id in reviews.stdout and run["ui_url"] in reviews.stdout

    decided = await keel(stack, "decide", review_id, "edit", "--answer", "Which device?")
    assert decided.returncode == 0, decided.stderr
    assert "edited" in decided.stdout and run["ui_url"] in decided.stdout
    again = await keel(stack, "decide", review_id, "approve")
    assert again.returncode == 1 and "not pending" in again.stderr

    for _ in range(100):
        shown = json.loads((await keel(stack, "--json", "show", run["run_id"])).stdout)
        if shown["status"] == "completed":
            break
    assert shown["result"]["answer"] == "Which device?"


async def test_errors_are_one_clear_line(stack):
    unknown = await keel(stack, "run", "nobody", "hi")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("keel: HTTP 404: no agent 'nobody'")
    assert "Traceback" not in unknown.stderr

    down = await keel(stack, "runs", env={"KEEL_API_PORT": str(free_port())})
    assert down.returncode == 1 and "is `keel up` running?" in down.stderr
    assert "Traceback" not in down.stderr


async def test_api_on_a_busy_port_says_so(stack):
    busy = await keel(stack, "api")  # the suite's API already holds this port
    assert busy.returncode == 1
    assert f"port {stack.api_port} on 127.0.0.1 is already in use" in busy.stderr
    assert "Traceback" not in busy.stderr


async def test_ping(stack):
    ok = await keel(stack, "ping")
    assert ok.returncode == 0 and ok.stdout.strip() == "ok"
    down = await keel(stack, "ping", env={"KEEL_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"})
    assert down.returncode == 1 and "Traceback" not in down.stderr


async def test_bad_routing_settings_stop_the_worker_with_the_key_named(stack):
    unknown = await keel(
        stack, "worker", env={"KEEL_ROUTES": '{"default": {"candidates": ["gpt"]}}'}
    )
    assert unknown.returncode == 1
    assert "routes.default.candidates names deployment 'gpt'" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    typo = await keel(stack, "worker", env={"KEEL_ROUTES": '{"default": {"candidate": ["local"]}}'})
    assert typo.returncode == 1 and "routes.default.candidate" in typo.stderr

    unpriced = await keel(
        stack,
        "worker",
        env={"KEEL_DEPLOYMENTS": '{"x": {"provider": "openai", "model": "gpt-unknown-9"}}'},
    )
    assert unpriced.returncode == 1 and "deployments.x.price" in unpriced.stderr
    assert "Traceback" not in unpriced.stderr


async def test_tools_lists_the_catalog(stack):
    listed = await keel(stack, "tools")
    assert listed.returncode == 0, listed.stderr
    assert "create_ticket(subject, description, priority)  [needs approval" in listed.stdout
    assert "calculator(expression)  [runs freely" in listed.stdout
    assert "keel_example_tools]" in listed.stdout


async def test_run_follow_prints_each_step_live(stack):
    followed = await keel(stack, "run", "support", CONFIDENT, "--follow")
    assert followed.returncode == 0, followed.stderr
    lines = followed.stdout.splitlines()
    assert "run.started" in lines[0] and f"support: {CONFIDENT}" in lines[0]
    assert any(
        "step.started" in line and "classify: local/extractive-bm25" in line for line in lines
    )
    assert any("run.finished" in line and "completed" in line for line in lines)
    assert "status   completed" in followed.stdout  # then the run itself


async def test_runs_and_reviews_by_short_id_claim_cancel_and_follow(stack):
    first = json.loads((await keel(stack, "run", "support", UNSURE, "--wait", "--json")).stdout)
    await keel(stack, "run", "support", CONFIDENT, "--wait")
    run_id = first["run_id"]
    short = run_id.removeprefix("run-")[:8]
    assert first["pending_review"]["review_id"] == f"{run_id}.review-1"

    async def shown() -> bool:  # the prefix is a visibility query, which catches up shortly
        found = await keel(stack, "show", short, "--json")  # options after the command too
        return found.returncode == 0 and json.loads(found.stdout)["run_id"] == run_id

    await eventually(shown)
    many = await keel(stack, "show", "run-")
    assert many.returncode == 1 and "starts more than one run id" in many.stderr
    none = await keel(stack, "show", "zzzz")
    assert none.returncode == 1 and "no run id starts with 'run-zzzz'" in none.stderr

    claimed = await keel(stack, "claim", f"{short}.review-1", "--reviewer", "ana")
    assert claimed.returncode == 0, claimed.stderr
    assert f"review {run_id}.review-1: claimed by ana" in claimed.stdout
    taken = await keel(stack, "decide", f"{short}.review-1", "approve", "--reviewer", "bo")
    assert taken.returncode == 1 and "ana" in taken.stderr  # held by someone else
    released = await keel(stack, "claim", f"{short}.review-1", "--release", "--reviewer", "ana")
    assert released.returncode == 0 and "released" in released.stdout, released.stderr

    cancelled = await keel(stack, "cancel", short)
    assert cancelled.returncode == 0 and f"cancelling {run_id}" in cancelled.stdout
    followed = await keel(stack, "follow", short)  # an ended run: its events, then the run
    assert "run.finished" in followed.stdout and "status   cancelled" in followed.stdout
    assert followed.returncode == 1


async def test_json_after_the_command_a_closed_pipe_and_help_that_runs_nothing(stack):
    keys = await keel(stack, "keys", "list", "--json")
    assert keys.returncode == 0 and json.loads(keys.stdout) == [], keys.stderr

    # The reader is gone before `keel` writes a byte: it stops quietly, as `| head` expects.
    process = subprocess.Popen(
        [KEEL, "runs", "--json"], env=stack.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    assert await asyncio.to_thread(process.wait, 60) == 141
    assert b"Traceback" not in process.stderr.read()

    for module in ("bench.escalation", "bench.escalation_routes"):
        helped = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, "--help", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(helped.communicate(), 60)
        assert helped.returncode == 0 and out.startswith(f"usage: python -m {module}".encode())


async def test_runs_by_cost_and_usage_from_the_command_line(stack):
    done = await keel(stack, "--json", "run", "support", CONFIDENT, "--wait")
    run_id = json.loads(done.stdout)["run_id"]

    newest = await keel(stack, "runs", "--sort=-created_at", "--limit", "1")
    assert newest.returncode == 0, newest.stderr
    assert run_id in newest.stdout and "$0.000000" in newest.stdout

    usage = await keel(stack, "usage", "--by", "deployment", "--bucket", "day")
    assert usage.returncode == 0, usage.stderr
    header, columns, *rows = usage.stdout.splitlines()
    assert header.startswith("runs started from ") and columns.split()[:3] == [
        "bucket",
        "deployment",
        "cost",
    ]
    assert any(row.split()[1] == "local" for row in rows), usage.stdout

    naive = await keel(stack, "usage", "--since", "2026-01-01T00:00:00")
    assert naive.returncode != 0 and "UTC offset" in naive.stderr
