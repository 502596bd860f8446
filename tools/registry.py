"""The tool registry: `@tool` turns a typed function into a Temporal activity `tool.<name>`.

```python
class Weather(BaseModel):
    city: str

@tool(timeout=timedelta(seconds=10))
async def weather(args: Weather) -> Forecast:
    \"\"\"Today's forecast for a city.\"\"\"
```

Keel derives the name (the function's), the description (its docstring), the JSON schema
the model sees (the argument model's) and the result schema (the return annotation). A
tool may take a second parameter, `context: ToolContext`, for its idempotency key and the
worker's shared resources. Tools come from Keel (`tools.builtin`) and from any installed
package's `keel.tools` entry points (a `ToolDefinition`, or a module whose `__all__` lists
them); a clash of names or a schema that does not build stops the worker at start.

A call's outcome: arguments that fail the schema, and a `ToolError` the tool raises on
purpose, go back to the model as an error it can act on; any other exception fails the
attempt, and Temporal retries it under the tool's retry policy (a non-retryable
`ApplicationError` ends the step).

With an audit log, every executed call is an entry of the run's audit trail: the tool's
name and the SHA-256 of its arguments' canonical JSON, once per activity.
"""

import asyncio
import hashlib
import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, get_type_hints

from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.common import RetryPolicy
from typing_extensions import TypeIs

from keel.audit import AuditLog
from keel.errors import KeelUserError
from keel.schemas.tools import ToolCallInput, ToolCatalog, ToolInfo, ToolOutcome

__all__ = ["ToolContext", "ToolDefinition", "ToolError", "ToolRegistry", "tool"]


class ToolError(Exception):
    """Raise in a tool to tell the model what went wrong; the run goes on.

    Not a failure of Keel (so not in `keel.errors`): it never leaves the tool's activity,
    which answers the model with it as an unsuccessful `ToolOutcome`.
    """


@dataclass(frozen=True)
class ToolContext:
    """What a tool call knows besides its arguments."""

    idempotency_key: str
    """Workflow id + step + call index: the key of this call's side effect."""
    workflow_id: str
    """The run."""
    resources: Any = None
    """The worker's shared resources (`tools.builtin.Resources` for the built-in tools)."""


@dataclass(frozen=True)
class ToolDefinition:
    """A registered tool: the function and everything Keel derived from it."""

    name: str
    description: str
    args_model: type[BaseModel]
    result_model: type[BaseModel]
    fn: Callable[..., Any]
    requires_approval: bool = False
    timeout: timedelta = timedelta(seconds=30)
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(maximum_attempts=5))
    idempotent: bool = False
    source: str = "keel"

    def info(self) -> ToolInfo:
        """The catalog entry."""
        return ToolInfo(
            name=self.name,
            description=self.description,
            parameters=self.args_model.model_json_schema(),
            result_schema=self.result_model.model_json_schema(),
            requires_approval=self.requires_approval,
            idempotent=self.idempotent,
            timeout_s=self.timeout.total_seconds(),
            max_attempts=self.retry.maximum_attempts,
            retry_initial_interval_s=self.retry.initial_interval.total_seconds(),
            retry_backoff=self.retry.backoff_coefficient,
            source=self.source,
        )

    async def run(self, call: ToolCallInput, context: ToolContext) -> ToolOutcome:
        """Validate the arguments, call the function, and say how it went."""
        try:
            args = self.args_model.model_validate(call.arguments)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in err.errors()
            )
            return ToolOutcome(
                call_id=call.call_id, ok=False, error=f"invalid arguments: {problems}"
            )
        params = inspect.signature(self.fn).parameters
        extra = (context,) if len(params) > 1 else ()
        try:
            if inspect.iscoroutinefunction(self.fn):
                result = await self.fn(args, *extra)
            else:
                result = await asyncio.to_thread(self.fn, args, *extra)
        except ToolError as err:
            return ToolOutcome(call_id=call.call_id, ok=False, error=str(err))
        value = self.result_model.model_validate(result).model_dump(mode="json")
        return ToolOutcome(call_id=call.call_id, ok=True, result=value)


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    requires_approval: bool = False,
    timeout: timedelta = timedelta(seconds=30),
    retry: RetryPolicy | None = None,
    idempotent: bool = False,
) -> Any:
    """Make a typed function a tool (usable bare, `@tool`, or with options, `@tool(...)`).

    Args:
        fn: The function: `(args: ArgsModel[, context: ToolContext]) -> ResultModel`.
        name: The tool's name; the function's by default.
        requires_approval: A person approves each call (and may edit its arguments) first.
        timeout: One attempt's limit (Temporal's start-to-close timeout).
        retry: Temporal's retry policy; five attempts with backoff by default.
        idempotent: The tool has no side effect, or makes it at most once per key.
    """

    def build(function: Callable[..., Any]) -> ToolDefinition:
        hints = get_type_hints(function)
        params = list(inspect.signature(function).parameters)
        label = name or function.__name__
        if not params or not _is_model(hints.get(params[0])):
            raise KeelUserError(
                f"tool {label!r}: its first parameter must be annotated with a pydantic model"
            )
        result = hints.get("return")
        if not _is_model(result):
            raise KeelUserError(f"tool {label!r}: its return type must be a pydantic model")
        return ToolDefinition(
            name=label,
            description=inspect.cleandoc(function.__doc__ or "").strip(),
            args_model=hints[params[0]],
            result_model=result,
            fn=function,
            requires_approval=requires_approval,
            timeout=timeout,
            retry=retry or RetryPolicy(maximum_attempts=5),
            idempotent=idempotent,
            source=(function.__module__ or "").split(".")[0],
        )

    return build(fn) if fn is not None else build


class ToolRegistry:
    """The tools one worker runs."""

    def __init__(self, definitions: Iterable[ToolDefinition] = ()) -> None:
        self._tools: dict[str, ToolDefinition] = {}
        for definition in definitions:
            self.register(definition)

    def register(self, definition: ToolDefinition) -> None:
        """Add a tool; a second tool of the same name is refused, naming both sources."""
        if not definition.description:
            raise KeelUserError(f"tool {definition.name!r} needs a docstring: the model reads it")
        existing = self._tools.get(definition.name)
        if existing is not None:
            raise KeelUserError(
                f"two tools are named {definition.name!r}: one from {existing.source!r}, "
                f"one from {definition.source!r}"
            )
        try:
            definition.info()
        except Exception as err:  # pydantic cannot build the JSON schema
            raise KeelUserError(f"tool {definition.name!r}: invalid schema: {err}") from err
        self._tools[definition.name] = definition

    def register_entry_points(self, group: str = "keel.tools") -> None:
        """Add the tools that installed packages declare in `group`."""
        for entry in entry_points(group=group):
            loaded = entry.load()
            for definition in _definitions(loaded, entry.name):
                self.register(definition)

    def catalog(self) -> ToolCatalog:
        """Every tool's catalog entry, by name."""
        return ToolCatalog(tools=[d.info() for d in sorted(self._tools.values(), key=_name)])

    def activities(
        self, resources: Any = None, audit: AuditLog | None = None
    ) -> list[Callable[..., Any]]:
        """One activity per tool (`tool.<name>`), plus the catalog's (`tools.catalog`)."""
        found = [_activity(d, resources, audit) for d in self._tools.values()]
        catalog = self.catalog()

        @activity.defn(name="tools.catalog")
        async def tool_catalog() -> ToolCatalog:
            return catalog

        return [*found, tool_catalog]

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def __getitem__(self, name: str) -> ToolDefinition:
        return self._tools[name]


def _activity(
    definition: ToolDefinition, resources: Any, audit: AuditLog | None
) -> Callable[..., Any]:
    async def run_tool(call: ToolCallInput) -> ToolOutcome:
        info = activity.info()
        context = ToolContext(call.idempotency_key, info.workflow_id or "", resources)
        outcome = await definition.run(call, context)
        if audit is not None:
            canonical = json.dumps(call.arguments, sort_keys=True, separators=(",", ":"))
            await audit.append(
                info.workflow_id or "",
                f"{info.workflow_run_id}:{info.activity_id}",
                "tool.executed",
                None,
                {
                    "tool": definition.name,
                    "call_id": call.call_id,
                    "arguments_sha256": hashlib.sha256(canonical.encode()).hexdigest(),
                    "ok": outcome.ok,
                },
            )
        return outcome

    return activity.defn(name=f"tool.{definition.name}")(run_tool)


def _definitions(loaded: object, entry: str) -> list[ToolDefinition]:
    if isinstance(loaded, ToolDefinition):
        return [loaded]
    if isinstance(loaded, ModuleType):
        found = [getattr(loaded, n) for n in getattr(loaded, "__all__", ())]
        tools = [t for t in found if isinstance(t, ToolDefinition)]
        if tools:
            return tools
    raise KeelUserError(
        f"entry point keel.tools:{entry} is neither a tool nor a module listing tools in __all__"
    )


def _is_model(annotation: object) -> TypeIs[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _name(definition: ToolDefinition) -> str:
    return definition.name
