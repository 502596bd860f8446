"""Keel's Temporal plugin: the one place that says how Keel talks to Temporal.

Clients (the API, the CLI's helpers) use it for the pydantic data converter; the worker
also gets Keel's workflow, activities, interceptors and failure types through it.
"""

from collections.abc import Callable, Sequence

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.plugin import SimplePlugin
from temporalio.worker import Interceptor

from keel.errors import KeelUserError
from workflows.agent import AgentWorkflow

__all__ = ["KeelPlugin"]


class KeelPlugin(SimplePlugin):
    """Pydantic payloads everywhere; on a worker, `AgentWorkflow` and Keel's activities."""

    def __init__(
        self,
        activities: Sequence[Callable[..., object]] = (),
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        super().__init__(
            "keel.KeelPlugin",
            data_converter=pydantic_data_converter,
            workflows=[AgentWorkflow],
            activities=list(activities),
            interceptors=list(interceptors),
            workflow_failure_exception_types=[KeelUserError],
        )
