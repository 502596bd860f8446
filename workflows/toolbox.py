"""Running tools from workflow code: the catalog, and each call as its own activity.

Each call is the activity `tool.<name>` with the tool's own timeout and retry policy, so
it shows by name in the run's history; independent calls run in parallel. Its idempotency
key is the workflow id, the step and the call's index: what a side-effecting tool keys its
write on, so a retried attempt never writes twice.
"""

import asyncio
import json

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.schemas.model import ToolCall
    from keel.schemas.tools import TOOL_CATALOG, ToolCallInput, ToolCatalog, ToolOutcome
    from workflows.activity_options import TOOL_CATALOG_OPTIONS, tool_call_options

__all__ = ["Toolbox"]


class Toolbox:
    """One run's view of the worker's tools."""

    def __init__(self) -> None:
        self._catalog: ToolCatalog | None = None
        self._asking = asyncio.Lock()  # concurrent first askers share one activity

    async def catalog(self) -> ToolCatalog:
        """The tools the workers run (asked once per run, then remembered in history)."""
        async with self._asking:
            if self._catalog is None:
                catalog: ToolCatalog = await workflow.execute_local_activity(
                    TOOL_CATALOG,
                    result_type=ToolCatalog,
                    **TOOL_CATALOG_OPTIONS.for_local_activity(),
                )
                self._catalog = catalog
        return self._catalog

    async def execute(self, calls: list[ToolCall], *, step: str) -> list[ToolOutcome]:
        """Run `calls` in parallel, each as its own activity; outcomes in the same order."""
        catalog = await self.catalog()
        workflow_id = workflow.info().workflow_id
        return list(
            await asyncio.gather(
                *(
                    self._execute(catalog, call, f"{workflow_id}:{step}:{index}")
                    for index, call in enumerate(calls)
                )
            )
        )

    async def _execute(self, catalog: ToolCatalog, call: ToolCall, key: str) -> ToolOutcome:
        info = catalog.get(call.name)
        if info is None:
            names = ", ".join(t.name for t in catalog.tools)
            return ToolOutcome(
                call_id=call.id, ok=False, error=f"no tool {call.name!r}; tools: {names}"
            )
        arguments = json.dumps(call.arguments, sort_keys=True)
        return await workflow.execute_activity(
            info.activity,
            ToolCallInput(call_id=call.id, arguments=call.arguments, idempotency_key=key),
            result_type=ToolOutcome,
            **tool_call_options(info).for_activity(summary=f"{call.name}({arguments[:100]})"),
        )
