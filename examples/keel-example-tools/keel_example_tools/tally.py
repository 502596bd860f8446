"""`tally`: an agent that counts by asking the `calculator` tool, one step at a time.

add ─┬─→ add ─→ …
     └─→ finalize

Each `add` step is a real tool call (the `tool.calculator` activity, `<total> + 1`), so a
run of `count` steps is a loop of `count` durable steps: the shape of a long-running
agent whose state stays small. Long runs continue as new on the way; the count comes out
right only if no step ran twice and none was skipped.
"""

from typing import Any

from langgraph.graph import END, START, StateGraph
from temporalio.exceptions import ApplicationError

from keel.schemas.model import ToolCall
from keel.schemas.runs import AgentState, Outcome, RunResult
from keel_example_tools.tally_spec import TallyInput
from workflows.run_context import run_context

__all__ = ["TallyState", "add", "build_graph", "finalize"]


class TallyState(AgentState):
    """The count so far."""

    total: int = 0
    steps: int = 0


async def add(state: TallyState) -> dict[str, Any]:
    """One step: the calculator adds one to the total."""
    step = f"add-{state.steps}"
    call = ToolCall(id=step, name="calculator", arguments={"expression": f"{state.total} + 1"})
    [outcome] = await run_context().toolbox.execute([call], step=step)
    if not outcome.ok or not isinstance(outcome.result, dict):
        raise ApplicationError(f"the calculator failed: {outcome.error}", non_retryable=True)
    value = outcome.result["value"]
    assert isinstance(value, int)
    return {"total": value, "steps": state.steps + 1}


def finalize(state: TallyState) -> dict[str, Any]:
    """The total is the answer."""
    answer = f"counted to {state.total} in {state.steps} steps"
    return {"result": RunResult(status="completed", outcome=Outcome(answer=answer, confidence=1.0))}


async def _next(state: TallyState) -> str:
    # async: a sync router would run on a thread pool, which the workflow sandbox forbids.
    return "add" if state.steps < TallyInput.model_validate(state.input).count else "finalize"


def build_graph() -> StateGraph[TallyState, None, TallyState, TallyState]:
    """The tally's graph; its nodes run in the workflow, its tool calls as activities."""
    in_workflow = {"execute_in": "workflow"}
    g = StateGraph(TallyState)
    g.add_node("add", add, metadata=in_workflow)
    g.add_node("finalize", finalize, metadata=in_workflow)
    g.add_edge(START, "add")
    g.add_conditional_edges("add", _next, ["add", "finalize"])
    g.add_edge("finalize", END)
    return g
