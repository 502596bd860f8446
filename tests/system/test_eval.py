"""`keel eval` on a tiny labelled set: two configurations, each on a stack of its own."""

import asyncio
import json
import subprocess
import zlib
from pathlib import Path

import pytest

from keel.testing.stack import KEEL, Stack

QUESTIONS = [
    {
        "id": "q1",
        "question": "How do I turn on two-factor authentication?",
        "answerable": True,
        "category": "answerable",
        "key_facts": [["six-digit code", "6-digit code"]],
        "split": "tune",
    },
    {  # the answer names the button but not the (made-up) second fact: incomplete
        "id": "q2",
        "question": "How do I reset my password?",
        "answerable": True,
        "category": "answerable",
        "key_facts": [["forgot password"], ["a fact no article holds"]],
        "split": "tune",
    },
    {
        "id": "q3",
        "question": "What is the weather in Paris tomorrow?",
        "answerable": False,
        "category": "not_covered",
        "split": "tune",
    },
    {"question": "How do I export my notes?", "answerable": True, "split": "test"},
]


async def _keel(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    process = await asyncio.create_subprocess_exec(
        KEEL,
        *args,
        env=stack.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 500)
    return subprocess.CompletedProcess(args, process.returncode or 0, out.decode(), err.decode())


@pytest.mark.timeout(600)
async def test_keel_eval_scores_two_configurations_side_by_side(tmp_path: Path) -> None:
    stack = Stack("127.0.0.1:1", tmp_path / "keel")  # keel eval starts servers of its own
    labelled = tmp_path / "set.jsonl"
    labelled.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    strict = tmp_path / "strict.toml"
    strict.write_text("review_threshold = 0.9\n")
    out = tmp_path / "report"
    args = ("eval", "support", "--labelled", str(labelled), "--split", "tune")
    done = await _keel(stack, "--json", *args, "--compare", str(strict), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "running 3 labelled questions" in done.stderr  # the test split is left out
    configured, stricter = json.loads(done.stdout)
    assert (configured["config"], configured["threshold"]) == ("configured", 0.6)
    assert (stricter["config"], stricter["threshold"]) == (str(strict), 0.9)

    # At 0.6 both answerable questions are sent (confidence 1.0 and 0.8), one incomplete;
    # the weather escalates: the verifier finds no passage that answers it.
    overall, answerable, not_covered = configured["groups"]
    assert [g["group"] for g in configured["groups"]] == ["all", "answerable", "not_covered"]
    assert overall["escalation"]["precision"] == overall["escalation"]["recall"] == 1.0
    assert (overall["sent"], overall["sent_wrong"], overall["sent_incomplete"]) == (2, 1, 1)
    assert overall["wrong_sent_rate"] == 0.5 and overall["answerable_answered"] == 1.0
    low, high = overall["wrong_sent_interval"]["low"], overall["wrong_sent_interval"]["high"]
    assert low == pytest.approx(0.0125, abs=1e-3) and high == pytest.approx(0.9875, abs=1e-3)
    assert answerable["escalation"]["recall"] is None and not_covered["sent"] == 0
    routes = {r["route"]: r for r in configured["routes"]}
    assert set(routes) == {"answered without review", "escalated: not_answered"}
    assert routes["answered without review"]["runs"] == 2
    assert 0 < routes["answered without review"]["latency_s_mean"] < 120
    assert [(m["provider"], m["cost_usd"]) for m in configured["models"]] == [("local", 0.0)]
    wrong = {q["id"]: q["wrong"] for q in configured["questions"]}
    assert wrong == {"q1": False, "q2": True, "q3": True}

    # At 0.9 the password answer (0.8) goes to a person: nothing wrong is sent.
    overall = stricter["groups"][0]
    assert (overall["sent"], overall["sent_wrong"]) == (1, 0)
    assert overall["escalation"]["precision"] == 0.5 and overall["answerable_answered"] == 0.5
    assert "escalated: low_confidence" in {r["route"] for r in stricter["routes"]}
    assert [(p["threshold"], p["wrong_sent"]) for p in stricter["curve"]] == [
        (1.0, 0.0),
        (0.8, 0.5),
    ]  # no threshold sends the weather: the verifier found it unanswered

    report = (out / "eval.md").read_text()
    assert "| all | configured | 3 | 1 | 1.000 | 1.000 | 2 | 1 (1 incomplete) |" in report
    assert f"| all | {strict} | 3 | 1 | 0.500 | 1.000 | 1 | 0 (0 incomplete) |" in report
    assert "![risk/coverage](risk_coverage.png)" in report
    assert json.loads((out / "eval.json").read_text()) == [configured, stricter]
    png = (out / "risk_coverage.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png[12:16] == b"IHDR"
    assert (int.from_bytes(png[16:20]), int.from_bytes(png[20:24])) == (640, 480)
    assert zlib.crc32(png[12:29]) == int.from_bytes(png[29:33])

    text = await _keel(stack, *args)
    assert text.returncode == 0, text.stderr
    assert "| all | 3 | 1 | 1.000 | 1.000 | 2 | 1 (1 incomplete) | 50.0 % [1.3, 98.7] |" in (
        text.stdout
    )
    missing = await _keel(
        stack, "eval", "support", "--labelled", str(labelled), "--split", "holdout"
    )
    assert missing.returncode == 1 and "no question in split 'holdout'" in missing.stderr
