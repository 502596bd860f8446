"""The `support` agent retrieves through `retrieval.search` and cites what it found."""

import httpx
from temporalio.client import Client

from keel.testing.stack import Stack, local_activities, start_run, wait_status
from tests.conftest import CONFIDENT


async def test_answer_cites_passages_of_the_help_centre_collection(
    http: httpx.AsyncClient, stack: Stack, temporal_client: Client
) -> None:
    run_id = (await start_run(http, CONFIDENT))["run_id"]

    run = await wait_status(http, run_id, {"completed"})

    citations = run["result"]["citations"]
    assert citations and citations[0]["passage_id"].startswith("reset-password#")
    # Each citation names a chunk of the built-in collection, as a search finds it.
    search = await http.post("/v1/collections/quillpad/search", json={"query": CONFIDENT})
    found = {p["id"]: p for p in search.json()["passages"]}
    for citation in citations:
        assert found[citation["passage_id"]]["title"] == citation["title"]
        assert found[citation["passage_id"]]["collection"] == "quillpad"
    # The retrieval was one `retrieval.search` local activity of the run, in the worker.
    history = await temporal_client.get_workflow_handle(run_id).fetch_history()
    assert local_activities(history).count("retrieval.search") == 1
    assert not any(e.HasField("activity_task_scheduled_event_attributes") for e in history.events)
