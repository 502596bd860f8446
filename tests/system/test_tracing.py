"""Tracing is off until a tracer provider is set: checked in a fresh interpreter."""

from keel.testing.stack import fresh_python


def test_without_a_tracer_provider_no_tracing_interceptor_runs() -> None:
    # In a fresh interpreter: this one's spans fixture may have set a provider already.
    script = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from temporalio.contrib.opentelemetry import TracingInterceptor\n"
        "from keel.temporal.plugin import KeelPlugin\n"
        "def traced():\n"
        "    return any(isinstance(i, TracingInterceptor) for i in KeelPlugin().interceptors)\n"
        "print(traced())\n"
        "trace.set_tracer_provider(TracerProvider())\n"
        "print(traced())\n"
    )
    assert fresh_python(script) == ["False", "True"]
