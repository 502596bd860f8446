"""Metrics and traces of a real deployment.

`keel worker` and `keel api` processes export to a collector that speaks OTLP/HTTP (the
protobuf wire format), and serve Prometheus metrics; the tests read both as an operator's
tools would.
"""

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from keel.net import free_port
from keel.testing.stack import eventually, start_run, wait_status
from tests.conftest import CONFIDENT, UNSURE


@dataclass(frozen=True)
class Span:
    name: str
    service: str
    trace_id: str
    span_id: str
    parent_id: str


@dataclass
class OtlpCollector:
    """An OTLP/HTTP receiver on loopback that keeps every span it is sent."""

    spans: list[Span] = field(default_factory=list)
    metric_posts: int = 0

    def __post_init__(self) -> None:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    collector._receive_traces(body)
                elif self.path == "/v1/metrics":
                    collector.metric_posts += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def _receive_traces(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                self.spans.extend(
                    Span(
                        name=s.name,
                        service=attributes.get("service.name", ""),
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(),
                    )
                    for s in scope.spans
                )

    def __enter__(self) -> "OtlpCollector":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Observed:
    collector: OtlpCollector
    http: httpx.AsyncClient
    worker_metrics_url: str


@pytest.fixture
async def observed(make_stack) -> AsyncIterator[Observed]:  # type: ignore[no-untyped-def]
    """A stack exporting spans to a collector, its worker serving Prometheus metrics."""
    with OtlpCollector() as collector:
        port = free_port()
        stack = make_stack(
            KEEL_OTEL_ENDPOINT=collector.url,
            # Counts are exact because replays record nothing; a workflow task retried
            # after an eviction mid-task re-executes live, so keep runs cached here.
            KEEL_WORKER_MAX_CACHED_WORKFLOWS="1000",
            KEEL_METRICS_PORT=str(port),
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_METRIC_EXPORT_INTERVAL="500",
        )
        await stack.start_worker()
        await stack.start_api()
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            yield Observed(collector, http, f"http://127.0.0.1:{port}/metrics")
        stack.stop_all()  # while the collector still listens for the last exports


def _samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, sample.labels, sample.value


async def _scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain")
    return list(_samples(response.text))


def _total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(
        value
        for sample, have, value in samples
        if sample == name and all(have.get(k) == v for k, v in labels.items())
    )


async def test_a_run_is_one_trace_from_the_http_request_to_the_model_call(observed: Observed):
    run = await start_run(observed.http, CONFIDENT)
    await wait_status(observed.http, run["run_id"], {"completed"})
    spans = observed.collector.spans

    async def exported() -> bool:
        names = {s.name for s in spans}
        return {"POST /v1/runs", "RunWorkflow:AgentWorkflow", "chat extractive-bm25"} <= names

    await eventually(exported)
    request = next(s for s in spans if s.name == "POST /v1/runs" and not s.parent_id)
    assert request.service == "keel-api"
    in_trace = [s for s in spans if s.trace_id == request.trace_id]
    by_id = {s.span_id: s for s in in_trace}
    start = next(s for s in in_trace if s.name == "StartWorkflow:AgentWorkflow")
    assert start.service == "keel-api"
    assert by_id[start.parent_id] == request  # the client's start is inside the request
    worker_spans = {s.name for s in in_trace if s.service == "keel-worker"}
    assert {"RunWorkflow:AgentWorkflow", "RunActivity:model.call"} <= worker_spans
    assert "chat extractive-bm25" in worker_spans  # the GenAI span, in the same trace


async def test_run_review_and_model_metrics_reach_prometheus(observed: Observed):
    http = observed.http
    confident = await start_run(http, CONFIDENT)
    unsure = await start_run(http, UNSURE)
    await wait_status(http, confident["run_id"], {"completed"})
    await wait_status(http, unsure["run_id"], {"awaiting_review"})
    review = (await http.get("/v1/reviews", params={"run_id": unsure["run_id"]})).json()
    pending = review["reviews"][0]
    review_id, bound, reason = pending["id"], pending["action_hash"], pending["reason"]
    decided = await http.post(
        f"/v1/reviews/{review_id}/decision", json={"action": "approve", "action_hash": bound}
    )
    assert decided.status_code == 200, decided.text
    await wait_status(http, unsure["run_id"], {"completed"})

    samples: list[tuple[str, dict[str, str], float]] = []

    async def recorded() -> bool:
        samples[:] = await _scrape(observed.worker_metrics_url)
        return _total(samples, "keel_runs_finished_total", agent="support") >= 2

    await eventually(recorded)
    assert _total(samples, "keel_runs_started_total", agent="support") == 2
    assert _total(samples, "keel_runs_finished_total", agent="support", status="completed") == 2
    assert _total(samples, "keel_escalations_total", agent="support") == 1
    assert _total(samples, "keel_escalations_total", agent="support", reason=reason) == 1
    waits = [
        (name, labels)
        for name, labels, _ in samples
        if name.startswith("keel_review_wait") and name.endswith("_count")
    ]
    assert len(waits) == 1 and waits[0][1]["status"] == "approved", waits
    assert _total(samples, waits[0][0]) == 1
    # classify + answer on each run, all on the local deployment of route `default`.
    tokens = _total(samples, "keel_model_tokens_total", route="default", deployment="local")
    assert tokens > 0
    costs = [n for n, labels, _ in samples if n.startswith("keel_model_cost") and "_count" in n]
    assert _total(samples, costs[0], route="default") == 4
    # Temporal's own SDK metrics share the registry.
    assert _total(samples, "temporal_workflow_completed_total") >= 2

    api = await _scrape(f"{http.base_url}/metrics")
    requests = [
        labels
        for name, labels, _ in api
        if name.startswith("http_server_") and name.endswith("_count")
    ]
    assert any(
        labels.get("http_target", labels.get("http_route")) == "/v1/runs" for labels in requests
    )


async def test_retried_activities_are_counted(observed: Observed):
    # The local provider calls `flaky_lookup` (examples/keel-example-tools) when a message
    # names it; the tool fails its first two attempts on purpose.
    body = {"agent": "assistant", "input": {"message": "flaky lookup of order-7"}}
    response = await observed.http.post("/v1/runs", json=body)
    assert response.status_code == 202, response.text
    await wait_status(observed.http, response.json()["run_id"], {"completed"})
    samples: list[tuple[str, dict[str, str], float]] = []

    async def counted() -> bool:
        samples[:] = await _scrape(observed.worker_metrics_url)
        return _total(samples, "keel_activity_retries_total") >= 2

    await eventually(counted)
    assert _total(samples, "keel_activity_retries_total", activity_type="tool.flaky_lookup") == 2
