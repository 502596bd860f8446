"""The built-in `local` model is called as a local activity; `local_activity = false` is not."""

import json

import httpx

from keel.settings import LOCAL_DEPLOYMENT
from keel.testing.stack import local_activities, start_run, wait_status
from tests.conftest import CONFIDENT


async def _history_of_one_run(make_stack, temporal_client, **settings: str):
    stack = make_stack(**settings)
    await stack.start_worker()
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        done = await wait_status(http, run_id, {"completed"})
    assert done["result"]["citations"]
    assert [e["step"] for e in done["cost"]["entries"]] == ["classify", "answer", "verify"]
    return await temporal_client.get_workflow_handle(run_id).fetch_history()


def _scheduled(history) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.WhichOneof("attributes") == "activity_task_scheduled_event_attributes"
    ]


async def test_local_model_calls_run_as_local_activities(make_stack, temporal_client):
    history = await _history_of_one_run(make_stack, temporal_client)

    assert "model.call" not in _scheduled(history)  # no task-queue round trip for a model call
    # classify, answer and verify are recorded as local-activity markers naming `model.call`
    assert local_activities(history).count("model.call") == 3


async def test_a_deployment_can_go_through_the_task_queue(make_stack, temporal_client):
    queued = LOCAL_DEPLOYMENT.model_copy(update={"local_activity": False})
    history = await _history_of_one_run(
        make_stack,
        temporal_client,
        KEEL_DEPLOYMENTS=json.dumps({"local": queued.model_dump(mode="json")}),
    )

    assert _scheduled(history).count("model.call") == 3
