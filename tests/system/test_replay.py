"""Recorded histories of every shipped workflow replay without non-determinism.

The histories in `tests/histories/` were recorded from real runs on the real stack: each
path of the `support` agent (one of them audited and decided on a combined score), the
`assistant` through a tool approval, the example `tally` agent, and an ingestion
(`IngestWorkflow`). A change to a workflow or a graph that would
break runs already in flight fails here. After an intended, compatible change, record
them again (`make histories`):

    KEEL_RECORD_HISTORIES=1 .venv/bin/pytest tests/system/test_replay.py

Older histories are kept and never recorded again: `before_triage/` holds the `support`
paths as they ran before triage and the verifier; `legacy/` holds runs whose input is read as
they wrote it (`RunInput` folds the fields it no longer has).
"""

import asyncio
import base64
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHistory

from keel.schemas.runs import RunInput
from keel.settings import Settings
from keel.testing.stack import Stack, wait_status
from tests.conftest import CONFIDENT, UNSURE
from tests.replays import replayer
from worker.agents import build_graphs

HISTORIES = Path(__file__).parents[1] / "histories"
LEGACY = HISTORIES / "legacy"
BEFORE_TRIAGE = HISTORIES / "before_triage"
TICKET = "Please open a ticket: export to PDF is broken, urgent"


@dataclass(frozen=True)
class Run:
    """How a run's history is recorded: the agent, its input, the reviewer's decision, and
    the settings of the stack it runs on when they are not the default ones."""

    agent: str
    input: dict[str, Any] | str
    decision: dict[str, Any] | None = None
    settings: dict[str, str] = field(default_factory=dict[str, str])


# Every answer sent is also audited, and `check` decides on a combined score.
AUDITED_SCORED = {
    "KEEL_ESCALATION": json.dumps(
        {
            "audit_rate": 1.0,
            "agents": {
                "support": {
                    "score": {"intercept": -1.0, "weights": {"confidence": 3.0, "answered": 1.0}}
                }
            },
        }
    )
}


RUNS = {
    "auto_complete": Run("support", CONFIDENT),
    "approve": Run("support", UNSURE, {"action": "approve", "reviewer": "ana"}),
    "edit": Run("support", UNSURE, {"action": "edit", "answer": "Which device are you on?"}),
    "reject": Run("support", "Can you recommend a good pizza place?", {"action": "reject"}),
    "assistant_ticket": Run("assistant", {"message": TICKET}, {"action": "approve"}),
    "tally": Run("tally", {"count": 3}),
    "audited_scored": Run("support", CONFIDENT, settings=AUDITED_SCORED),
}
INGESTION = "ingest"
RECORDED = sorted([*RUNS, INGESTION])


async def _record_run(run: Run, http: httpx.AsyncClient) -> str:
    started = await http.post("/v1/runs", json={"agent": run.agent, "input": run.input})
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    if run.decision is not None:
        view = await wait_status(http, run_id, {"awaiting_review"})
        review_id = view["pending_review"]["review_id"]
        bound = {**run.decision, "action_hash": view["pending_review"]["action_hash"]}
        decided = await http.post(f"/v1/reviews/{review_id}/decision", json=bound)
        assert decided.status_code == 200, decided.text
    await wait_status(http, run_id, {"completed", "rejected"})
    return run_id


async def _record_ingestion(http: httpx.AsyncClient) -> str:
    """A collection of three documents, indexed by one ingestion; its workflow id."""
    name = f"replay-{uuid.uuid4().hex[:8]}"
    created = await http.post("/v1/collections", json={"name": name})
    assert created.status_code == 201, created.text
    ingestion = uuid.uuid4().hex
    documents = [
        {"id": f"d{i}", "text": f"Paragraph {i} about rivers and lakes."} for i in range(3)
    ]
    done = await http.post(
        f"/v1/collections/{name}/documents",
        params={"ingestion": ingestion, "wait": 30},
        json=documents,
    )
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    return f"ingest:{name}:{ingestion}"


async def _record(name: str, stack: Stack, make_stack: Any, client: Client) -> None:
    settings = RUNS[name].settings if name in RUNS else {}
    if settings:
        stack = make_stack(**settings)
        await stack.start_worker()
        await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
        workflow_id = await (
            _record_ingestion(http) if name == INGESTION else _record_run(RUNS[name], http)
        )
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    fixture = {"workflow_id": workflow_id, "history": history.to_json_dict()}
    (HISTORIES / f"{name}.json").write_text(json.dumps(fixture, indent=1) + "\n")


def _fixture(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _history(fixture: dict[str, Any]) -> WorkflowHistory:
    return WorkflowHistory.from_json(fixture["workflow_id"], fixture["history"])


def _activities(history: WorkflowHistory) -> set[str]:
    """The activity types the run ran: through the task queue, or local (its markers)."""
    types = set[str]()
    for e in history.events:
        kind = e.WhichOneof("attributes")
        if kind == "activity_task_scheduled_event_attributes":
            types.add(e.activity_task_scheduled_event_attributes.activity_type.name)
        elif kind == "marker_recorded_event_attributes":
            details = e.marker_recorded_event_attributes.details
            if "data" in details and details["data"].payloads:
                types.add(json.loads(details["data"].payloads[0].data).get("activity_type", ""))
    return types - {""}


def _kinds(history: WorkflowHistory) -> list[str | None]:
    return [e.WhichOneof("attributes") for e in history.events]


async def _replays(history: WorkflowHistory) -> None:
    result = await replayer(Settings()).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


def _start_payload(fixture: dict[str, Any]) -> dict[str, Any]:
    """The start event's first input payload, as it is stored in the fixture."""
    started = fixture["history"]["events"][0]["workflowExecutionStartedEventAttributes"]
    return started["input"]["payloads"][0]


def _run_input(fixture: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(_start_payload(fixture)["data"]))


@pytest.mark.parametrize("name", RECORDED)
async def test_recorded_history_replays(
    name: str, stack: Stack, make_stack: Any, temporal_client: Client
):
    if os.environ.get("KEEL_RECORD_HISTORIES") == "1":
        await _record(name, stack, make_stack, temporal_client)
    fixture = _fixture(HISTORIES / f"{name}.json")
    history = _history(fixture)
    await _replays(history)
    # The fixture really is the path it is named after.
    kinds = _kinds(history)
    updates = kinds.count("workflow_execution_update_accepted_event_attributes")
    assert updates == (1 if name in RUNS and RUNS[name].decision is not None else 0)
    assert kinds[-1] == "workflow_execution_completed_event_attributes"
    workflow = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
    if name in RUNS:
        assert workflow == "AgentWorkflow"
        recorded = _run_input(fixture)
        assert "review_threshold" not in recorded and recorded["agent"] == RUNS[name].agent
        audited = "review.open_audit" in _activities(history)
        assert audited == (name == "audited_scored")
        assert (recorded["policy"].get("score") is not None) == (name == "audited_scored")
    else:
        assert workflow == "IngestWorkflow"


@pytest.mark.parametrize("path", sorted(BEFORE_TRIAGE.glob("*.json")), ids=lambda p: p.stem)
async def test_history_from_before_triage_and_the_verifier_replays(path: Path):
    """Runs started before `classify` triaged and `verify` judged replay as they ran."""
    history = _history(_fixture(path))
    patches = {
        e.marker_recorded_event_attributes.details["patch_data"].SerializeToString()
        for e in history.events
        if e.WhichOneof("attributes") == "marker_recorded_event_attributes"
    }
    assert not any(b"support-triage" in p or b"support-verify" in p for p in patches)
    await _replays(history)


@pytest.mark.parametrize("path", sorted(LEGACY.glob("*.json")), ids=lambda p: p.stem)
async def test_legacy_history_replays(path: Path):
    """Runs started before the review fields were folded into the policy replay as they ran."""
    fixture = _fixture(path)
    assert "review_threshold" in _run_input(fixture)
    await _replays(_history(fixture))


def _without_policy(fixture: dict[str, Any], **fields: object) -> dict[str, Any]:
    """The run's input as a run from before policies had it: no `policy`, and `fields`."""
    recorded = _run_input(fixture)
    older = {**{k: v for k, v in recorded.items() if k != "policy"}, **fields}
    _start_payload(fixture)["data"] = base64.b64encode(json.dumps(older).encode()).decode()
    return older


async def test_a_legacy_input_without_a_policy_replays_with_the_same_decisions():
    """An input from before policies (a threshold and a timeout, no `policy`) escalates as
    it did: its threshold and timeout become the policy, so each path replays."""
    for name in ("approve", "auto_complete"):
        fixture = _fixture(LEGACY / f"{name}.json")
        policy = RunInput.model_validate(_run_input(fixture)).policy
        older = _without_policy(fixture)
        assert RunInput.model_validate(older).policy == policy
        await _replays(_history(fixture))

    # Not vacuous: read with a threshold no answer reaches, the run would have asked a person.
    fixture = _fixture(LEGACY / "auto_complete.json")
    _without_policy(fixture, review_threshold=1.0)
    replaying = replayer(Settings())
    result = await replaying.replay_workflow(_history(fixture), raise_on_replay_failure=False)
    assert "Nondeterminism" in str(result.replay_failure)


def test_a_changed_graph_is_caught():
    """The replay check is not vacuous: a graph with a node removed fails the approve path."""
    history = _history(_fixture(HISTORIES / "approve.json"))
    graphs = build_graphs(Settings())
    support = graphs["support"]
    support.nodes.pop("retrieve")
    support.edges.discard(("classify", "retrieve"))
    support.edges.discard(("retrieve", "answer"))
    support.add_edge("classify", "answer")
    replaying = replayer(Settings(), graphs)
    result = asyncio.run(replaying.replay_workflow(history, raise_on_replay_failure=False))
    # The model calls are local activities: the answer's call meets the retrieval's marker.
    assert result.replay_failure is not None
    assert "Failed decoding" in str(result.replay_failure) or "Nondeterminism" in str(
        result.replay_failure
    )
