"""A deployment marked `local_activity` is called as a local activity, with the same result."""

import json

import httpx

from keel.settings import LOCAL_DEPLOYMENT
from tests.conftest import CONFIDENT
from tests.stack import start_run, wait_status


async def test_local_model_calls_run_as_local_activities(make_stack, temporal_client):
    local = LOCAL_DEPLOYMENT.model_copy(update={"local_activity": True})
    stack = make_stack(KEEL_DEPLOYMENTS=json.dumps({"local": local.model_dump(mode="json")}))
    await stack.start_worker()
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        run_id = (await start_run(http, CONFIDENT))["run_id"]
        done = await wait_status(http, run_id, {"completed"})
    assert done["result"]["citations"]
    assert [e["step"] for e in done["cost"]["entries"]] == ["classify", "answer"]

    history = await temporal_client.get_workflow_handle(run_id).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.WhichOneof("attributes") == "activity_task_scheduled_event_attributes"
    ]
    assert "model.call" not in scheduled  # no task-queue round trip for a model call
    # classify and answer are recorded as local-activity markers that name `model.call`
    local_calls = [
        e
        for e in history.events
        if e.WhichOneof("attributes") == "marker_recorded_event_attributes"
        and any(
            b'"model.call"' in p.data
            for p in e.marker_recorded_event_attributes.details["data"].payloads
        )
    ]
    assert len(local_calls) == 2
