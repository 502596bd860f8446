"""The services of one run, for the graph nodes that run in its workflow.

`AgentWorkflow` builds one `RunContext` per run and binds it for the graph; a node reads
it with `run_context()`:

```python
async def answer(state: State) -> dict[str, Any]:
    response = await run_context().router.complete(request, step="answer")
```

Why not LangGraph's own runtime context (`context_schema`, `Runtime[Context]`): the
temporalio-langgraph plugin copies `Runtime.context` into the input of every node that runs
`execute_in="activity"` (`temporalio.langgraph._langgraph_config.get_langgraph_config`), so
it must be serializable, and it would enter the history of every such node. These services
are live objects of the workflow (the router's ledger, the toolbox's catalog, the guards'
results); they exist only in the workflow, never in an activity. So the context is a
context variable of the workflow's run task, which the graph's tasks inherit: each run, and
each replay, sees its own.
"""

from contextvars import ContextVar
from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.errors import KeelUserError
    from workflows.guards import Screening
    from workflows.routing import Router
    from workflows.toolbox import Toolbox

__all__ = ["RunContext", "bind_run_context", "run_context"]


@dataclass(frozen=True)
class RunContext:
    """What a workflow-side graph node may use besides its state."""

    router: Router
    """Routes the run's model calls and keeps its cost ledger (`workflows.routing`)."""
    toolbox: Toolbox
    """Runs tool calls, each as its own `tool.<name>` activity (`workflows.toolbox`)."""
    screening: Screening
    """The run's escalation policy and its guards (`workflows.guards`)."""


_current: ContextVar[RunContext] = ContextVar("keel_run_context")


def bind_run_context(context: RunContext) -> None:
    """Make `context` the current run's, for the graph the calling workflow task runs."""
    _current.set(context)


def run_context() -> RunContext:
    """The current run's services; only in a workflow-side node of a graph a run executes."""
    try:
        return _current.get()
    except LookupError:
        raise KeelUserError(
            "run_context() is only available in a graph node with execute_in='workflow' "
            "of a run (AgentWorkflow)"
        ) from None
