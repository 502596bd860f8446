"""The in-workflow LangGraph checkpointer.

The checkpointer only lives in workflow memory (Temporal's history is what survives), but
LangGraph still round-trips state through msgpack; it is told exactly which pydantic types
the graph's state may hold, so nothing else is ever deserialised.
"""

from functools import cache
from typing import Any, get_args
from weakref import WeakKeyDictionary

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

# langgraph ships `py.typed` at its namespace root, which pyright does not look at.
from langgraph.graph import StateGraph  # pyright: ignore[reportMissingTypeStubs]
from langgraph.graph.state import CompiledStateGraph  # pyright: ignore[reportMissingTypeStubs]
from pydantic import BaseModel

__all__ = ["checkpointer_for", "compiled", "state_models"]

_COMPILED: WeakKeyDictionary[Any, CompiledStateGraph[Any, Any, Any, Any]] = WeakKeyDictionary()


def compiled(graph: StateGraph[Any, Any, Any, Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    """`graph` compiled for one run, with an in-memory checkpointer of the run's own.

    Compiling inspects every node (signatures, bytecode), so a graph is compiled once per
    process; each run gets a copy that differs only in its checkpointer, which is how one
    compiled LangGraph graph serves many threads.
    """
    app = _COMPILED.get(graph)
    if app is None:
        # langgraph leaves the checkpointer's and cache's type parameters unbound.
        saver = checkpointer_for(graph.state_schema)
        app = _COMPILED[graph] = graph.compile(checkpointer=saver)  # pyright: ignore[reportUnknownMemberType]
    return app.copy({"checkpointer": checkpointer_for(graph.state_schema)})


def checkpointer_for(state_schema: type[BaseModel]) -> InMemorySaver:
    """An in-memory checkpointer that accepts the models of `state_schema`."""
    return InMemorySaver(serde=_serializer(state_schema))


@cache
def _serializer(state_schema: type[BaseModel]) -> JsonPlusSerializer:
    # Stateless, so one per graph serves every run; building it walks the whole schema.
    allow = [(m.__module__, m.__qualname__) for m in sorted(state_models(state_schema), key=str)]
    return JsonPlusSerializer(allowed_msgpack_modules=allow)


def state_models(schema: type[BaseModel]) -> set[type[BaseModel]]:
    """`schema` and every pydantic model its fields can hold, however nested."""
    found: set[type[BaseModel]] = set()
    pending: list[Any] = [schema]
    while pending:
        annotation = pending.pop()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation in found:
                continue
            found.add(annotation)
            pending += [f.annotation for f in annotation.model_fields.values()]
        else:
            pending += get_args(annotation)
    return found
