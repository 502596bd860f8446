"""Keel's Temporal plugin: the one place that says how Keel talks to Temporal.

Clients (the API, the CLI's helpers) use it for the pydantic data converter; the worker
also gets Keel's workflow, activities, interceptors and failure types through it, and
`graph_plugins` pairs it with the LangGraph plugin for a set of agent graphs.
"""

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from langgraph.graph import StateGraph
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.langgraph import LangGraphPlugin
from temporalio.plugin import SimplePlugin
from temporalio.worker import Interceptor, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from keel.errors import KeelUserError
from worker.retries import ActivityRetries
from workflows.agent import AgentWorkflow
from workflows.checkpoint import state_models
from workflows.retrieval import RETRIEVAL_WORKFLOWS

__all__ = ["KeelPlugin", "graph_plugins"]


class KeelPlugin(SimplePlugin):
    """Pydantic payloads everywhere; on a worker, `AgentWorkflow` and Keel's activities.

    Args:
        activities: Activities the worker runs.
        interceptors: Worker interceptors.
        passthrough_modules: Modules the workflow sandbox shares with the worker instead of
            re-importing them for every run.
        data_converter: The converter (`keel.payloads.data_converter` keeps large payloads
            outside the history); plain pydantic when omitted.
    """

    def __init__(
        self,
        activities: Sequence[Callable[..., object]] = (),
        interceptors: Sequence[Interceptor] = (),
        passthrough_modules: Sequence[str] = (),
        data_converter: DataConverter = pydantic_data_converter,
    ) -> None:
        modules = tuple(passthrough_modules)

        def runner(existing: WorkflowRunner | None) -> WorkflowRunner:
            if not isinstance(existing, SandboxedWorkflowRunner) or not modules:
                assert existing is not None
                return existing
            restrictions = existing.restrictions.with_passthrough_modules(*modules)
            return replace(existing, restrictions=restrictions)

        super().__init__(
            "keel.KeelPlugin",
            data_converter=data_converter,
            workflows=[AgentWorkflow, *RETRIEVAL_WORKFLOWS],
            activities=list(activities),
            # Client, workflow and activity spans; context crosses processes in headers.
            interceptors=[TracingInterceptor(), ActivityRetries(), *interceptors],
            workflow_runner=runner,
            workflow_failure_exception_types=[KeelUserError],
        )


def graph_plugins(
    graphs: dict[str, StateGraph[Any, Any, Any, Any]],
    activities: Sequence[Callable[..., object]] = (),
    interceptors: Sequence[Interceptor] = (),
    data_converter: DataConverter = pydantic_data_converter,
) -> list[SimplePlugin]:
    """Keel's plugin and the LangGraph plugin for `graphs`, for a worker or a replayer.

    The modules that define the graphs' state models pass through the sandbox: LangGraph's
    checkpointer rebuilds those models by importing their module, and a copy re-imported in
    the sandbox would define classes the graph's own state does not accept.
    """
    modules = sorted(
        {model.__module__ for g in graphs.values() for model in state_models(g.state_schema)}
    )
    return [
        KeelPlugin(
            activities, interceptors, passthrough_modules=modules, data_converter=data_converter
        ),
        LangGraphPlugin(graphs=graphs),
    ]
