"""Recorded histories of each path replay without non-determinism.

The histories in `tests/histories/` were recorded from real runs; a change to the workflow
or the support graph that would break runs already in flight fails here. After an
intended, compatible change, record them again:

    KEEL_RECORD_HISTORIES=1 .venv/bin/pytest tests/system/test_replay.py
"""

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from keel.settings import Settings
from keel.testing.stack import Stack, start_run, wait_status
from tests.conftest import CONFIDENT, UNSURE
from worker.agents import build_graphs, graph_plugins

HISTORIES = Path(__file__).parents[1] / "histories"
PATHS = {
    "auto_complete": (CONFIDENT, None),
    "approve": (UNSURE, {"action": "approve", "reviewer": "ana"}),
    "edit": (UNSURE, {"action": "edit", "answer": "Which device are you on?"}),
    "reject": ("Can you recommend a good pizza place?", {"action": "reject"}),
}


def _replayer() -> Replayer:
    return Replayer(workflows=[], plugins=graph_plugins(build_graphs(Settings())))


async def _record(name: str, http: httpx.AsyncClient, client: Client) -> None:
    question, decision = PATHS[name]
    run_id = (await start_run(http, question))["run_id"]
    if decision is not None:
        view = await wait_status(http, run_id, {"awaiting_review"})
        review_id = view["pending_review"]["review_id"]
        bound = {**decision, "action_hash": view["pending_review"]["action_hash"]}
        decided = await http.post(f"/v1/reviews/{review_id}/decision", json=bound)
        assert decided.status_code == 200, decided.text
    await wait_status(http, run_id, {"completed", "rejected"})
    history = await client.get_workflow_handle(run_id).fetch_history()
    fixture = {"workflow_id": run_id, "history": history.to_json_dict()}
    (HISTORIES / f"{name}.json").write_text(json.dumps(fixture, indent=1) + "\n")


def _load(name: str) -> WorkflowHistory:
    fixture = json.loads((HISTORIES / f"{name}.json").read_text())
    return WorkflowHistory.from_json(fixture["workflow_id"], fixture["history"])


@pytest.mark.parametrize("name", sorted(PATHS))
async def test_recorded_history_replays(name: str, stack: Stack, temporal_client: Client):
    if os.environ.get("KEEL_RECORD_HISTORIES") == "1":
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            await _record(name, http, temporal_client)
    history = _load(name)
    result = await _replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
    # The fixture really is the path it is named after.
    kinds = [e.WhichOneof("attributes") for e in history.events]
    updates = kinds.count("workflow_execution_update_accepted_event_attributes")
    assert updates == (0 if PATHS[name][1] is None else 1)
    assert kinds[-1] == "workflow_execution_completed_event_attributes"


def test_a_changed_graph_is_caught():
    """The replay check is not vacuous: a graph with a node removed fails the approve path."""
    history = _load("approve")
    graphs = build_graphs(Settings())
    support = graphs["support"]
    support.nodes.pop("retrieve")
    support.edges.discard(("classify", "retrieve"))
    support.edges.discard(("retrieve", "answer"))
    support.add_edge("classify", "answer")
    replayer = Replayer(workflows=[], plugins=graph_plugins(graphs))
    result = asyncio.run(replayer.replay_workflow(history, raise_on_replay_failure=False))
    assert "Nondeterminism" in str(result.replay_failure)
