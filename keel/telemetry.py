"""Tracing: an OTLP exporter when a collector is configured, nothing otherwise.

Spans come from Temporal's tracing interceptor (client, workflow and activity spans, with
the context carried in Temporal headers, so a run is one trace across processes) and from
the model activity's GenAI spans. Without `KEEL_OTEL_ENDPOINT` (or the standard
`OTEL_EXPORTER_OTLP_ENDPOINT`) the OpenTelemetry API stays a no-op: no exporter, no cost.
"""

import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from keel.settings import Settings

__all__ = ["configure_tracing"]


def configure_tracing(settings: Settings, service: str) -> TracerProvider | None:
    """Export this process's spans over OTLP/HTTP, if a collector is configured.

    Args:
        settings: `otel_endpoint` names the collector's base address.
        service: This process's role (`api`, `worker`, `up`), in `service.name`.

    Returns:
        The provider now in use (call `shutdown()` on it at exit to flush), or None.
    """
    endpoint = settings.otel_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    if not endpoint:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": f"keel-{service}"}))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider
