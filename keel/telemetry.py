"""Traces and metrics of one Keel process.

Traces: spans come from Temporal's tracing interceptor (client, workflow and activity spans,
with the context carried in Temporal headers, so a run is one trace across processes), from
the API's request spans, and from the model activity's GenAI spans. Without
`KEEL_OTEL_ENDPOINT` (or the standard `OTEL_EXPORTER_OTLP_ENDPOINT`) the OpenTelemetry API
stays a no-op for traces: no exporter, no cost.

Metrics: every process keeps OpenTelemetry metrics in a Prometheus registry, which the API
serves at `/metrics` (and `keel worker` on `KEEL_METRICS_PORT`); with an endpoint set they
are also pushed over OTLP. Temporal's own SDK metrics and Keel's run metrics, which the
workflow records replay-safely through `workflow.metric_meter()` (`workflows/metrics.py`),
reach the same registry through a metric buffer that this module drains.

The wrong-sent rate of each agent (`keel.quality`) is a gauge, `keel_wrong_sent_rate`
(attribute `bound`: `estimate`, `lower`, `upper`), with `keel_audits_graded` beside it; the
API sets both when it starts, when an audit is graded and when the rate is read.
"""

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncGenerator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import (
    CallbackOptions,
    Counter,
    Histogram,
    Meter,
    Observation,
    _Gauge,  # the API's synchronous gauge type (exported under this name)
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import start_http_server
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_HISTOGRAM,
    BufferedMetric,
    MetricBuffer,
    Runtime,
    TelemetryConfig,
)

from keel.schemas.calibration import WrongSentEstimate
from keel.settings import Settings

__all__ = ["configure_tracing", "otel_endpoint", "record_wrong_sent", "telemetry"]


def otel_endpoint(settings: Settings) -> str:
    """The OTLP/HTTP collector's base address, or "" when none is configured."""
    endpoint = settings.otel_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    return endpoint.rstrip("/")


def configure_tracing(settings: Settings, service: str) -> TracerProvider | None:
    """Export this process's spans over OTLP/HTTP, if a collector is configured.

    Args:
        settings: `otel_endpoint` names the collector's base address.
        service: This process's role (`api`, `worker`, `up`), in `service.name`.

    Returns:
        The provider now in use (call `shutdown()` on it at exit to flush), or None.
    """
    endpoint = otel_endpoint(settings)
    if not endpoint:
        return None
    provider = TracerProvider(resource=_resource(service))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(f"{endpoint}/v1/traces")))
    trace.set_tracer_provider(provider)
    return provider


@asynccontextmanager
async def telemetry(
    settings: Settings, service: str, *, metrics_port: int | None = None
) -> AsyncGenerator[None]:
    """Traces and metrics for this process while the block runs; flushed when it ends.

    Call it before the process makes its first Temporal client: Temporal's metrics go to
    the runtime that clients are created on.

    Args:
        settings: Where traces and metrics are exported.
        service: This process's role, in `service.name`.
        metrics_port: Also serve the Prometheus registry on this port (for a process with
            no HTTP server of its own, such as `keel worker`).
    """
    tracer_provider = configure_tracing(settings, service)
    readers: list[MetricReader] = [PrometheusMetricReader()]
    endpoint = otel_endpoint(settings)
    if endpoint:
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(f"{endpoint}/v1/metrics")))
    meter_provider = MeterProvider(
        metric_readers=readers, resource=_resource(service), views=_VIEWS
    )
    metrics.set_meter_provider(meter_provider)
    buffer = MetricBuffer(100_000)
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(metrics=buffer)))
    bridge = _TemporalMetrics(buffer, meter_provider.get_meter("temporalio"))
    draining = asyncio.create_task(bridge.run())
    server = None
    if metrics_port is not None:
        server, _ = start_http_server(metrics_port, addr=settings.api_host)
    try:
        yield
    finally:
        draining.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await draining
        bridge.drain()  # what was recorded last still goes out
        if server is not None:
            server.shutdown()
        meter_provider.shutdown()
        if tracer_provider is not None:
            tracer_provider.shutdown()


_VIEWS = [
    # Spend per call is a fraction of a cent to a few dollars; a review waits minutes to days.
    View(
        instrument_name="keel_model_cost",
        aggregation=ExplicitBucketHistogramAggregation(
            [0.0, 0.0001, 0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]
        ),
    ),
    View(
        instrument_name="keel_review_wait",
        aggregation=ExplicitBucketHistogramAggregation(
            [s * 1000.0 for s in (10, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)]
        ),
    ),
]


@dataclass
class _Sum:
    """A counter's updates within one drain, for one attribute set."""

    metric: BufferedMetric
    value: float
    attributes: dict[str, Any]


class _TemporalMetrics:
    """Moves Temporal's metrics (the SDK's and the workflows' own) into OpenTelemetry.

    Instruments and attribute sets are keyed by value: the SDK's buffered metric objects
    are not kept alive between drains, so their ids can be reused by other metrics.
    """

    def __init__(self, buffer: MetricBuffer, meter: Meter, interval: float = 1.0) -> None:
        self._buffer, self._meter, self._interval = buffer, meter, interval
        self._instruments: dict[str, Counter | Histogram | dict[Any, Observation]] = {}

    async def run(self) -> None:
        """Drain the buffer every `interval` seconds, until cancelled."""
        while True:
            self.drain()
            await asyncio.sleep(self._interval)

    def drain(self) -> None:
        """Apply every buffered update; a counter's updates are summed per attribute set first."""
        sums: dict[tuple[str, tuple[tuple[str, Any], ...]], _Sum] = {}
        for update in self._buffer.retrieve_updates():
            attributes = dict(update.attributes)
            if update.metric.kind != BUFFERED_METRIC_KIND_COUNTER:
                self._apply(update.metric, update.value, attributes)
                continue
            key = (update.metric.name, tuple(sorted(attributes.items())))
            if (total := sums.get(key)) is None:
                sums[key] = _Sum(update.metric, update.value, attributes)
            else:
                total.value += update.value
        for total in sums.values():
            self._apply(total.metric, total.value, total.attributes)

    def _apply(self, metric: BufferedMetric, value: float, attributes: dict[str, Any]) -> None:
        instrument = self._instruments.get(metric.name) or self._create(metric)
        if isinstance(instrument, dict):  # a gauge: the latest value per attribute set wins
            key = tuple(sorted(attributes.items()))
            with _GAUGE_LOCK:
                instrument[key] = Observation(value, attributes)
        elif isinstance(instrument, Histogram):
            instrument.record(value, attributes)
        else:
            instrument.add(value, attributes)

    def _create(self, metric: BufferedMetric) -> Counter | Histogram | dict[Any, Observation]:
        unit, description = metric.unit or "", metric.description or ""
        instrument: Counter | Histogram | dict[Any, Observation]
        if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
            instrument = self._meter.create_counter(metric.name, unit, description)
        elif metric.kind == BUFFERED_METRIC_KIND_HISTOGRAM:
            instrument = self._meter.create_histogram(metric.name, unit, description)
        else:
            values: dict[Any, Observation] = {}
            instrument = values

            def observe(_: CallbackOptions) -> Iterable[Observation]:
                with _GAUGE_LOCK:
                    return list(values.values())

            self._meter.create_observable_gauge(metric.name, [observe], unit, description)
        self._instruments[metric.name] = instrument
        return instrument


# Gauges are read by the exporters' threads while the event loop writes them.
_GAUGE_LOCK = threading.Lock()


@cache
def _quality_gauges() -> tuple[_Gauge, _Gauge]:
    # The global meter: bound to the provider `telemetry` sets, whenever that happens.
    meter = metrics.get_meter("keel")
    rate = meter.create_gauge(
        "keel_wrong_sent_rate",
        "",
        "Share of answers sent without review graded wrong, from audit samples.",
    )
    graded = meter.create_gauge("keel_audits_graded", "{audit}", "Audit samples graded.")
    return rate, graded


def record_wrong_sent(estimate: WrongSentEstimate) -> None:
    """Set an agent's wrong-sent gauges (nothing until one of its audits is graded)."""
    if estimate.wrong_sent_rate is None or estimate.lower is None or estimate.upper is None:
        return
    rate, graded = _quality_gauges()
    agent = {"agent": estimate.agent}
    for bound, value in (
        ("estimate", estimate.wrong_sent_rate),
        ("lower", estimate.lower),
        ("upper", estimate.upper),
    ):
        rate.set(value, {**agent, "bound": bound})
    graded.set(estimate.graded, agent)


def _resource(service: str) -> Resource:
    return Resource.create({"service.name": f"keel-{service}"})
