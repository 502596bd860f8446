"""Graph factories: each agent's graph, wired to its tools."""

from importlib import import_module
from typing import Any

from langgraph.graph import StateGraph

from keel.agents import agent_catalog
from keel.errors import KeelUserError
from tools.retrieval.knowledge_base import default_knowledge_base
from tools.routing.client import ModelClient
from tools.routing.local import LocalProvider
from tools.support import SupportActivities
from workflows import support

__all__ = ["build_graphs", "support_graph"]


def support_graph() -> StateGraph[Any, Any, Any, Any]:
    """The `support` agent on the shipped help centre and the keyless `local` model."""
    model = ModelClient([LocalProvider()], routes={"default": "local"})
    return support.build_graph(SupportActivities(default_knowledge_base(), model))


def build_graphs() -> dict[str, StateGraph[Any, Any, Any, Any]]:
    """Every installed agent's graph, by agent name."""
    graphs = {}
    for name, spec in agent_catalog().items():
        module, _, factory = spec.graph.partition(":")
        try:
            build = getattr(import_module(module), factory)
        except (ImportError, AttributeError) as err:
            raise KeelUserError(f"agent {name!r}: cannot load graph {spec.graph!r}: {err}") from err
        graphs[name] = build()
    return graphs
