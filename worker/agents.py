"""Graph factories: each agent's graph, wired to its tools, and the plugins that run them."""

from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any

from langgraph.graph import StateGraph
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.langgraph import LangGraphPlugin
from temporalio.worker import Interceptor

from keel.agents import agent_catalog
from keel.errors import KeelUserError
from keel.settings import Settings
from keel.temporal.plugin import KeelPlugin
from tools.models.triage import TriageModels
from workflows.agent import AgentWorkflow
from workflows.checkpoint import state_models
from workflows.retrieval import RETRIEVAL_WORKFLOWS

__all__ = ["build_graphs", "graph_plugins", "triage_models"]


def build_graphs(settings: Settings) -> dict[str, StateGraph[Any, Any, Any, Any]]:
    """Every installed agent's graph, by agent name; refuses agents whose routes are missing."""
    graphs = {}
    for name, spec in agent_catalog().items():
        missing = [route for route in spec.routes if route not in settings.routes]
        if missing:
            raise KeelUserError(
                f"agent {name!r} uses model route {missing[0]!r}, which is not configured; "
                f"routes: {', '.join(sorted(settings.routes))}"
            )
        module, _, factory = spec.graph.partition(":")
        try:
            build = getattr(import_module(module), factory)
        except (ImportError, AttributeError) as err:
            raise KeelUserError(f"agent {name!r}: cannot load graph {spec.graph!r}: {err}") from err
        graphs[name] = build()
    return graphs


def triage_models() -> TriageModels:
    """The triage classifiers of every installed agent that has examples, by agent name."""
    return TriageModels(
        {
            name: spec.triage_examples
            for name, spec in agent_catalog().items()
            if spec.triage_examples is not None
        }
    )


def graph_plugins(
    graphs: dict[str, StateGraph[Any, Any, Any, Any]],
    activities: Sequence[Callable[..., object]] = (),
    interceptors: Sequence[Interceptor] = (),
    data_converter: DataConverter = pydantic_data_converter,
) -> tuple[KeelPlugin, LangGraphPlugin]:
    """Keel's plugin and the LangGraph plugin for `graphs`, for a worker or a replayer.

    The modules that define the graphs' state models pass through the sandbox: LangGraph's
    checkpointer rebuilds those models by importing their module, and a copy re-imported in
    the sandbox would define classes the graph's own state does not accept.
    """
    modules = sorted(
        {model.__module__ for g in graphs.values() for model in state_models(g.state_schema)}
    )
    return (
        KeelPlugin(
            [AgentWorkflow, *RETRIEVAL_WORKFLOWS],
            activities,
            interceptors,
            passthrough_modules=modules,
            data_converter=data_converter,
        ),
        LangGraphPlugin(graphs=graphs),
    )
