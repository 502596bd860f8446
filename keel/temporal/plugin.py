"""Keel's Temporal plugin: the one place that says how Keel talks to Temporal.

Clients (the API, the CLI's helpers) use it for the pydantic data converter; the worker
also gets Keel's workflows, activities, interceptors and failure types through it, and
`worker.agents.graph_plugins` pairs it with the LangGraph plugin for a set of agent graphs.
This module imports no workflow code, so a client loads neither the workflows nor LangGraph.
"""

from collections.abc import Callable, Sequence
from dataclasses import replace

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.plugin import SimplePlugin
from temporalio.worker import Interceptor, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from keel.errors import never_retried
from keel.temporal.retries import ActivityRetries

__all__ = ["KeelPlugin"]


class KeelPlugin(SimplePlugin):
    """Pydantic payloads everywhere; on a worker, Keel's workflows and activities.

    Args:
        workflows: Workflows the worker runs.
        activities: Activities the worker runs.
        interceptors: Worker interceptors.
        passthrough_modules: Modules the workflow sandbox shares with the worker instead of
            re-importing them for every run.
        data_converter: The converter (`keel.payloads.data_converter` keeps large payloads
            outside the history); plain pydantic when omitted.
    """

    def __init__(
        self,
        workflows: Sequence[type] = (),
        activities: Sequence[Callable[..., object]] = (),
        interceptors: Sequence[Interceptor] = (),
        passthrough_modules: Sequence[str] = (),
        data_converter: DataConverter = pydantic_data_converter,
    ) -> None:
        # Keel's workflow modules hold no state of their own (`workflows/` is deterministic
        # by rule, and every run keeps its state on its instance): shared with the worker,
        # they are not executed again for every run.
        modules = (*passthrough_modules, *sorted({w.__module__ for w in workflows}))

        def runner(existing: WorkflowRunner | None) -> WorkflowRunner:
            if not isinstance(existing, SandboxedWorkflowRunner):
                assert existing is not None
                return existing
            restrictions = existing.restrictions.with_passthrough_modules(*modules)
            return replace(existing, restrictions=restrictions)

        # temporalio types `activities` as a sequence of bare `Callable`s (unknown returns).
        super().__init__(  # pyright: ignore[reportUnknownMemberType]
            "keel.KeelPlugin",
            data_converter=data_converter,
            workflows=list(workflows),
            activities=list(activities),
            interceptors=[*_tracing(), ActivityRetries(), *interceptors],
            workflow_runner=runner,
            # The catalogue's kinds that are never retried fail the workflow, not its task.
            workflow_failure_exception_types=list(never_retried()),
        )


def _tracing() -> list[Interceptor]:
    """Client, workflow and activity spans, their context carried across processes in headers.

    Only where this process records spans (`keel.telemetry` set a tracer provider): without
    one every span is a no-op, and its headers would still cost each task.
    """
    return [TracingInterceptor()] if isinstance(trace.get_tracer_provider(), TracerProvider) else []
