"""One trace per run: the client's start, the workflow, each activity and each model call."""

import uuid

from cli.devserver import DevServer
from keel.admission import admit
from keel.run_client import RunClient
from keel.settings import Settings
from keel.temporal.connection import connect
from tests.conftest import CONFIDENT
from worker.main import keel_worker


async def test_a_run_is_one_trace_down_to_the_model_call(temporal: DevServer, tmp_path, spans):
    settings = Settings(
        temporal_address=temporal.address,
        data_dir=tmp_path,
        task_queue=f"trace-{uuid.uuid4().hex[:8]}",
        worker_max_cached_workflows=0,
    )
    async with keel_worker(settings):
        runs = RunClient(await connect(settings))
        admission = admit(settings, "support", CONFIDENT)
        await runs.start(admission, settings.task_queue)
        result = await runs.result(admission.run_id)
    assert result.status == "completed"

    finished = spans.get_finished_spans()
    by_name = {s.name: s for s in finished}
    start = by_name["StartWorkflow:AgentWorkflow"]
    assert "RunWorkflow:AgentWorkflow" in by_name
    assert {"StartActivity:model.call", "RunActivity:model.call"} <= set(by_name)
    assert "RunActivity:retrieval.search" in by_name
    # Everything, the GenAI spans included, is one trace started by the client.
    assert {s.context.trace_id for s in finished} == {start.context.trace_id}
    ids = {s.context.span_id: s for s in finished}
    model = [s for s in finished if s.name == "chat extractive-bm25"]
    assert len(model) == 3  # classify, answer and verify
    for span in model:
        assert span.parent is not None
        assert ids[span.parent.span_id].name == "RunActivity:model.call"
        assert span.attributes["gen_ai.request.model"] == "extractive-bm25"
        assert span.attributes["gen_ai.usage.input_tokens"] > 0
