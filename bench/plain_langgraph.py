"""Scenario 1: plain LangGraph, compiled and `ainvoke`d in this process, no durability.

The floor under every other figure: what LangGraph itself costs per node.
"""

from bench._graph import NODES, BenchState, bench_admission, build_graph, check_result
from bench._harness import Options, Row, progress, sequential
from keel.schemas.runs import AgentState, RunResult

__all__ = ["run"]


async def run(opts: Options) -> list[Row]:
    """Time `ainvoke` of the compiled graph, no checkpointer."""
    progress("plain LangGraph, in-process")
    app = build_graph().compile()
    run_input = bench_admission().input
    state = AgentState(input=run_input.input, review_threshold=run_input.policy.threshold)

    async def run_once() -> None:
        out = await app.ainvoke(BenchState.model_validate(state.model_dump()))
        check_result(RunResult.model_validate(out["result"]))

    per_run, cpu = await sequential(run_once, opts)
    return [
        Row(
            key="plain",
            scenario="plain LangGraph",
            server="in-process",
            per_node=per_run.per(NODES),
            per_run=per_run,
            notes=f"no durability; cpu {cpu * 1000:.2f} ms/run",
        )
    ]
