"""The benchmark graph: five trivial async nodes in a line, the same in every scenario.

Each node appends its name to `steps` and bumps `count`; the last one sets `result`, so
the graph also runs unchanged under Keel's `AgentWorkflow`. The node functions live at
module level because the LangGraph plugin names its activities after them.
"""

from datetime import timedelta
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field

from keel.admission import admit
from keel.agents import AgentSpec
from keel.schemas.runs import Admission, AgentState, Outcome, RunResult
from keel.settings import Settings

__all__ = [
    "GRAPH",
    "NODES",
    "SPEC",
    "BenchState",
    "bench_admission",
    "build_graph",
    "check_result",
    "workflow_pair",
]

GRAPH = "bench5"
"""The graph's name in `LangGraphPlugin(graphs=...)`, and the agent name Keel runs it as."""
NODES = 5


class BenchState(AgentState):
    """What the five nodes write."""

    steps: list[str] = Field(default_factory=list)
    count: int = 0


def _advance(state: Any, name: str) -> dict[str, Any]:
    # An activity node gets the state as a plain dict (it crossed the data converter);
    # an in-process node gets the model.
    s = state if isinstance(state, BenchState) else BenchState.model_validate(state)
    return {"steps": [*s.steps, name], "count": s.count + 1}


async def node_1(state: Any) -> dict[str, Any]:
    return _advance(state, "node_1")


async def node_2(state: Any) -> dict[str, Any]:
    return _advance(state, "node_2")


async def node_3(state: Any) -> dict[str, Any]:
    return _advance(state, "node_3")


async def node_4(state: Any) -> dict[str, Any]:
    return _advance(state, "node_4")


async def node_5(state: Any) -> dict[str, Any]:
    update = _advance(state, "node_5")
    outcome = Outcome(answer=",".join(update["steps"]), confidence=1.0)
    return {**update, "result": RunResult(status="completed", outcome=outcome)}


_NODES = (node_1, node_2, node_3, node_4, node_5)


def build_graph(
    execute_in: Literal["activity", "workflow"] = "activity",
) -> StateGraph[BenchState, None, BenchState, BenchState]:
    """A fresh graph: `LangGraphPlugin` rewrites the nodes of the graphs it is given."""
    meta = {"execute_in": execute_in, "start_to_close_timeout": timedelta(seconds=10)}
    g = StateGraph(BenchState)
    previous = START
    for node in _NODES:
        g.add_node(node.__name__, node, metadata=dict(meta))
        g.add_edge(previous, node.__name__)
        previous = node.__name__
    g.add_edge(previous, END)
    return g


class BenchInput(BaseModel):
    """What a run of the graph is given (and does not read)."""

    question: str


SPEC = AgentSpec(
    name=GRAPH,
    description="Five trivial nodes in a line.",
    input_model=BenchInput,
    text_field="question",
    graph="bench._graph:build_graph",
)
"""The graph as an agent, for admitting its runs."""


def bench_admission() -> Admission:
    """Every durable run of the graph, admitted."""
    return admit(Settings(review_threshold=0.5, review_timeout_s=60), SPEC, "bench")


def check_result(result: RunResult) -> None:
    """Refuse a run that did not go through all five nodes (a broken bench, not a slow one)."""
    expected = ",".join(node.__name__ for node in _NODES)
    if result.status != "completed" or result.outcome.answer != expected:
        raise RuntimeError(f"the bench graph returned {result!r}")


def workflow_pair(
    state: type[AgentState], first: tuple[str, Any], finish: Any
) -> StateGraph[Any, Any, Any, Any]:
    """`first` (a name and a node) → `finish`, both run in the workflow."""
    name, node = first
    in_workflow = {"execute_in": "workflow"}
    g = StateGraph(state)
    g.add_node(name, node, metadata=in_workflow)
    g.add_node("finish", finish, metadata=in_workflow)
    g.add_edge(START, name)
    g.add_edge(name, "finish")
    g.add_edge("finish", END)
    return g
