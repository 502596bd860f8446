"""The `@tool` decorator, `ToolRegistry`, and tools from another package's entry points.

Activities run in `temporalio.testing.ActivityEnvironment`, the SDK's harness for code
that reads `activity.info()`. The entry-point tests need the example package installed:
`.venv/bin/pip install -e examples/keel-example-tools`.
"""

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, Field
from temporalio.testing import ActivityEnvironment

from keel.errors import KeelUserError
from keel.schemas.tools import ToolCallInput, ToolCatalog, ToolOutcome
from tools.builtin import BUILTIN_TOOLS
from tools.registry import ToolContext, ToolDefinition, ToolError, ToolRegistry, tool

EXAMPLE_INSTALL = "pip install -e examples/keel-example-tools"


class Echo(BaseModel):
    text: str = Field(max_length=20, description="What to say back.")
    times: int = Field(default=1, ge=1, le=3)


class Said(BaseModel):
    text: str


class Seen(BaseModel):
    idempotency_key: str
    workflow_id: str
    resources: str


@tool(timeout=timedelta(seconds=3), idempotent=True)
async def echo(args: Echo) -> Said:
    """Say the text back.

    Repeats it `times` times.
    """
    return Said(text=" ".join([args.text] * args.times))


@tool(name="whoami", requires_approval=True)
def what_the_call_knows(args: Echo, context: ToolContext) -> Seen:
    """Report the call's context (a synchronous tool: it runs in a thread)."""
    return Seen(
        idempotency_key=context.idempotency_key,
        workflow_id=context.workflow_id,
        resources=str(context.resources),
    )


@tool
async def refuse(args: Echo) -> Said:
    """Refuse, telling the model why."""
    raise ToolError(f"cannot say {args.text!r}: try a shorter word")


@tool
async def crash(args: Echo) -> Said:
    """Fail the way a bug or a lost connection does."""
    raise ConnectionResetError("peer went away")


def _call(arguments: dict[str, Any], call_id: str = "call-7") -> ToolCallInput:
    return ToolCallInput(call_id=call_id, arguments=arguments, idempotency_key="wf/step-2/0")


CONTEXT = ToolContext("wf/step-2/0", "wf")


# --- what the decorator derives ------------------------------------------------------------


def test_decorator_derives_the_catalog_entry() -> None:
    info = echo.info()
    assert (info.name, info.activity, info.source) == ("echo", "tool.echo", "tests")
    assert info.description == "Say the text back.\n\nRepeats it `times` times."
    assert info.parameters["required"] == ["text"]
    assert info.parameters["properties"]["text"] == {  # type: ignore[index]
        "description": "What to say back.",
        "maxLength": 20,
        "title": "Text",
        "type": "string",
    }
    assert info.result_schema["properties"] == {"text": {"title": "Text", "type": "string"}}
    assert (info.timeout_s, info.idempotent, info.requires_approval) == (3.0, True, False)
    assert info.max_attempts == 5


def test_decorator_takes_a_name_and_options() -> None:
    assert isinstance(what_the_call_knows, ToolDefinition)
    assert (what_the_call_knows.name, what_the_call_knows.requires_approval) == ("whoami", True)


def test_a_tool_needs_a_docstring() -> None:
    @tool
    async def silent(args: Echo) -> Said:
        return Said(text=args.text)

    with pytest.raises(KeelUserError, match="'silent' needs a docstring"):
        ToolRegistry([silent])


def test_a_tool_takes_a_model() -> None:
    with pytest.raises(KeelUserError, match="'shout': its first parameter must be .* pydantic"):

        @tool
        async def shout(text: str) -> Said:
            """Shout."""
            return Said(text=text.upper())

    with pytest.raises(KeelUserError, match="'mumble': its return type must be a pydantic"):

        @tool
        async def mumble(args: Echo) -> str:
            """Mumble."""
            return args.text


def test_a_name_clash_names_both_sources() -> None:
    @tool(name="calculator")
    async def my_calculator(args: Echo) -> Said:
        """Another calculator."""
        return Said(text=args.text)

    registry = ToolRegistry(BUILTIN_TOOLS)
    with pytest.raises(KeelUserError) as refused:
        registry.register(my_calculator)
    assert str(refused.value) == (
        "two tools are named 'calculator': one from 'tools', one from 'tests'"
    )
    assert registry["calculator"].source == "tools"  # the first one stays


# --- what a call returns -------------------------------------------------------------------


async def test_a_call_returns_the_result_as_json() -> None:
    outcome = await echo.run(_call({"text": "hi", "times": 2}), CONTEXT)
    assert outcome == ToolOutcome(call_id="call-7", ok=True, result={"text": "hi hi"})


async def test_bad_arguments_go_back_to_the_model_naming_the_field() -> None:
    outcome = await echo.run(_call({"text": "x" * 21, "times": 9}), CONTEXT)
    assert (outcome.call_id, outcome.ok, outcome.result) == ("call-7", False, None)
    assert outcome.error == (
        "invalid arguments: text: String should have at most 20 characters; "
        "times: Input should be less than or equal to 3"
    )
    missing = await echo.run(_call({}), CONTEXT)
    assert missing.error == "invalid arguments: text: Field required"


async def test_a_tool_error_goes_back_to_the_model() -> None:
    outcome = await refuse.run(_call({"text": "supercalifragilistic"}), CONTEXT)
    assert outcome == ToolOutcome(
        call_id="call-7",
        ok=False,
        error="cannot say 'supercalifragilistic': try a shorter word",
    )


async def test_other_exceptions_fail_the_attempt() -> None:
    with pytest.raises(ConnectionResetError, match="peer went away"):
        await crash.run(_call({"text": "hi"}), CONTEXT)


# --- as Temporal activities ------------------------------------------------------------------


async def test_the_activity_builds_the_context_from_the_activity() -> None:
    tool_activity, _ = ToolRegistry([what_the_call_knows]).activities(resources="shared")
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="support-42")
    outcome = await env.run(tool_activity, _call({"text": "hi"}))
    assert outcome.result == {
        "idempotency_key": "wf/step-2/0",
        "workflow_id": "support-42",
        "resources": "shared",
    }


async def test_the_catalog_activity_returns_the_catalog() -> None:
    registry = ToolRegistry([*BUILTIN_TOOLS, echo])
    *tool_activities, catalog_activity = registry.activities()
    catalog = await ActivityEnvironment().run(catalog_activity)
    assert isinstance(catalog, ToolCatalog)
    assert catalog == registry.catalog()
    assert [t.name for t in catalog.tools] == [
        "calculator",
        "create_ticket",
        "echo",
        "http_get",
        "search_knowledge",
    ]
    assert catalog.get("create_ticket").requires_approval  # type: ignore[union-attr]
    assert len(tool_activities) == 5


# --- tools from another package ----------------------------------------------------------------


@pytest.fixture(scope="module")
def discovered() -> ToolRegistry:
    registry = ToolRegistry()
    registry.register_entry_points()
    return registry


def test_entry_points_bring_the_example_tools(discovered: ToolRegistry) -> None:
    names = {t.name: t.source for t in discovered.catalog().tools}
    assert names.get("unit_convert") == "keel_example_tools", f"run: {EXAMPLE_INSTALL}"
    assert names.get("flaky_lookup") == "keel_example_tools", f"run: {EXAMPLE_INSTALL}"


def test_entry_point_tools_join_the_builtins_without_a_clash() -> None:
    registry = ToolRegistry(BUILTIN_TOOLS)
    registry.register_entry_points()
    assert {"calculator", "unit_convert", "flaky_lookup"} <= {
        t.name for t in registry.catalog().tools
    }


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"value": 1, "from_unit": "in", "to_unit": "cm"}, 2.54),
        ({"value": 100, "from_unit": "C", "to_unit": "F"}, 212.0),
        ({"value": -40, "from_unit": "F", "to_unit": "C"}, -40.0),
        ({"value": 0, "from_unit": "C", "to_unit": "K"}, 273.15),
        ({"value": 1, "from_unit": "lb", "to_unit": "g"}, 453.59237),
        ({"value": 5, "from_unit": "km", "to_unit": "mi"}, 3.106855961),
    ],
)
async def test_unit_convert_converts(
    discovered: ToolRegistry, arguments: dict[str, Any], expected: float
) -> None:
    outcome = await discovered["unit_convert"].run(_call(arguments), CONTEXT)
    assert outcome.ok, outcome.error
    assert outcome.result["value"] == expected  # type: ignore[index,call-overload]


async def test_unit_convert_refuses_mixed_quantities(discovered: ToolRegistry) -> None:
    arguments = {"value": 1, "from_unit": "kg", "to_unit": "m"}
    outcome = await discovered["unit_convert"].run(_call(arguments), CONTEXT)
    assert outcome.error == "cannot convert kg to m: different quantities"
    unknown = await discovered["unit_convert"].run(
        _call({**arguments, "to_unit": "parsec"}), CONTEXT
    )
    assert not unknown.ok and "to_unit" in (unknown.error or "")


async def test_flaky_lookup_fails_twice_then_answers(discovered: ToolRegistry) -> None:
    flaky = discovered["flaky_lookup"]
    assert flaky.retry.initial_interval == timedelta(seconds=0.2)
    assert flaky.retry.maximum_attempts >= 3  # or the demonstration could never succeed
    tool_activity, _ = ToolRegistry([flaky]).activities()
    env = ActivityEnvironment()
    call = _call({"key": "order-17"})
    for attempt in (1, 2):
        env.info = dataclasses.replace(env.info, attempt=attempt)
        with pytest.raises(RuntimeError, match=f"fails attempt {attempt} on purpose"):
            await env.run(tool_activity, call)
    env.info = dataclasses.replace(env.info, attempt=3)
    outcome = await env.run(tool_activity, call)
    assert outcome.result == {
        "key": "order-17",
        "record": {"status": "active", "owner": "example"},
        "attempt": 3,
    }
