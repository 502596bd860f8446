"""Graph factories: each agent's graph, wired to its tools."""

from importlib import import_module
from typing import Any

from langgraph.graph import StateGraph

from keel.agents import agent_catalog
from keel.errors import KeelUserError
from keel.settings import Settings

__all__ = ["build_graphs"]


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
