"""Continue-as-new for agent graphs: stop between two steps, start over with the same graph.

A run's history grows with every step, and Temporal warns at 10,240 events / 10 MB. So
while a graph runs, after every LangGraph superstep (all nodes of one step finished,
their writes applied) the workflow asks `due`: has Temporal suggested continuing as new,
or has the history reached the run's `HistoryLimits`? If so the graph stops right there
(LangGraph's `interrupt_after`, made conditional by `StopWhenDue`), and the workflow
continues as new with the same input plus a `Carried`: the graph's checkpoint (its state
and the nodes that run next, serialised by the graph's own checkpointer) and the run's
books. The continuation puts the checkpoint back into its checkpointer and resumes the
graph from it, so no node runs twice and none is skipped. The workflow id stays the same;
only Temporal's run id changes.
"""

import base64
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.memory import InMemorySaver

    from keel.schemas.continuation import HistoryLimits

__all__ = ["StopWhenDue", "due", "restore_checkpoint", "saved_checkpoint"]

_TYPE = "msgpack"


def due(limits: HistoryLimits) -> bool:
    """Whether the run should continue as new at the next step boundary."""
    info = workflow.info()
    return (
        info.is_continue_as_new_suggested()
        or info.get_current_history_length() >= limits.max_events
        or info.get_current_history_size() >= limits.max_bytes
    )


class StopWhenDue(Sequence[str]):
    """`interrupt_after` for `astream`: no node, until `due()`; then every node.

    LangGraph checks `node in interrupt_after` after each superstep, so the graph stops at
    the first step boundary after the history reaches its limits, and never otherwise.
    """

    def __init__(self, limits: HistoryLimits, due: Callable[[HistoryLimits], bool] = due):
        self._limits = limits
        self._due = due

    def __contains__(self, node: object) -> bool:
        return self._due(self._limits)

    def __len__(self) -> int:
        return 1  # non-empty, or LangGraph would not ask

    def __getitem__(self, index: Any) -> Any:
        raise IndexError("StopWhenDue names no node in particular")

    def __iter__(self) -> Iterator[str]:
        return iter(())


async def saved_checkpoint(saver: InMemorySaver, config: Any) -> str:
    """The graph's latest checkpoint, as `Carried.checkpoint`."""
    saved = await saver.aget_tuple(config)
    assert saved is not None, "the graph stopped without a checkpoint"
    writes = [list(write) for write in saved.pending_writes or ()]
    kind, data = saver.serde.dumps_typed(
        {"checkpoint": saved.checkpoint, "metadata": saved.metadata, "writes": writes}
    )
    assert kind == _TYPE, kind
    return base64.b64encode(data).decode()


async def restore_checkpoint(saver: InMemorySaver, config: Any, checkpoint: str) -> None:
    """Put a `saved_checkpoint` back, as the latest checkpoint of `config`'s thread."""
    saved = saver.serde.loads_typed((_TYPE, base64.b64decode(checkpoint)))
    stored = saved["checkpoint"]
    where: RunnableConfig = {"configurable": {**config["configurable"], "checkpoint_ns": ""}}
    written = await saver.aput(where, stored, saved["metadata"], stored["channel_versions"])
    by_task: dict[str, list[tuple[str, Any]]] = {}
    for task_id, channel, value in saved["writes"]:
        by_task.setdefault(task_id, []).append((channel, value))
    for task_id, writes in by_task.items():
        await saver.aput_writes(written, writes, task_id)
