"""The built-in tools, called the way a worker calls them: `ToolDefinition.run`.

`create_ticket` writes to a real SQLite file; `search_knowledge` searches the shipped
help-centre articles. (`http_get` has its own module, `tests/workflows/test_http_get.py`.)
"""

import asyncio
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import JsonValue
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.db import create_engine, init_db, session_factory
from keel.errors import KeelUserError
from keel.schemas.tools import ToolCallInput, ToolOutcome
from keel.settings import Settings
from keel.tables import TicketRow
from tools.builtin import BUILTIN_TOOLS
from tools.builtin.calculator import calculator
from tools.builtin.create_ticket import create_ticket
from tools.builtin.resources import Resources
from tools.builtin.search_knowledge import search_knowledge
from tools.registry import ToolContext, ToolDefinition
from tools.retrieval.builtin import ensure_quillpad
from tools.retrieval.service import RetrievalService
from tools.retrieval.vectors import DiskVectors

RUN = "run-tickets-1"


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keel.db'}")
    await init_db(engine)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def retrieval(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[RetrievalService]:
    service = RetrievalService(sessions, DiskVectors(), tmp_path)
    await ensure_quillpad(service)
    yield service
    await service.aclose()


@pytest.fixture
def resources(sessions: async_sessionmaker[AsyncSession], retrieval: RetrievalService) -> Resources:
    return Resources(
        sessions=sessions,
        retrieval=retrieval,
        http_allow_hosts=frozenset(),
        http_allow_private=False,
    )


async def _call(
    definition: ToolDefinition,
    arguments: dict[str, JsonValue],
    resources: Resources | None = None,
    key: str = f"{RUN}/step-1/0",
) -> ToolOutcome:
    call = ToolCallInput(call_id="call-1", arguments=arguments, idempotency_key=key)
    return await definition.run(call, ToolContext(key, RUN, resources))


def _ok(outcome: ToolOutcome) -> dict[str, Any]:
    assert outcome.ok, outcome.error
    assert isinstance(outcome.result, dict)
    return outcome.result


def test_builtin_tools_are_the_four() -> None:
    assert sorted(t.name for t in BUILTIN_TOOLS) == [
        "calculator",
        "create_ticket",
        "http_get",
        "search_knowledge",
    ]
    assert [t.name for t in BUILTIN_TOOLS if t.requires_approval] == ["create_ticket"]
    assert all(t.idempotent for t in BUILTIN_TOOLS)


def test_resources_from_settings_normalise_hosts(
    sessions: async_sessionmaker[AsyncSession], retrieval: RetrievalService
) -> None:
    settings = Settings(
        http_get_allow_hosts=["Docs.Example.COM", "api.example.org."], http_get_allow_private=True
    )
    made = Resources.from_settings(settings, sessions, retrieval)
    assert made.http_allow_hosts == {"docs.example.com", "api.example.org"}
    assert made.http_allow_private is True
    assert made.retrieval is retrieval


# --- calculator ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", 7),
        ("(12.5 + 7) * 3 / 4", 14.625),
        ("7 // 2", 3),
        ("7 % 4", 3),
        ("-2 ** 2", -4),
        ("2 ** -1", 0.5),
        ("2 ** 10", 1024),
        ("sqrt(16) + abs(-2)", 6.0),
        ("round(10 / 3, 2)", 3.33),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("2 * pi", 2 * math.pi),
        ("+(3)", 3),
    ],
)
async def test_calculator_evaluates(expression: str, value: float) -> None:
    result = _ok(await _call(calculator, {"expression": expression}))
    assert result == {"expression": expression, "value": value}
    # Integer arithmetic stays integer: the model sees 3, not 3.0.
    assert type(result["value"]) is type(value)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os')", "function '__import__' is not allowed"),
        ("open('/etc/passwd')", "function 'open' is not allowed"),
        ("(1).real", "attribute access (.real) is not allowed"),
        ("().__class__.__bases__", "attribute access"),
        ("x + 1", "unknown name 'x'"),
        ("[1, 2][0]", "Subscript expressions are not allowed"),
        ("'a' * 3", "'a' is not a number"),
        ("True + 1", "True is not a number"),
        ("1 < 2", "Compare expressions are not allowed"),
        ("2 ^ 3", "write ** for a power"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("1 +", "not a valid expression"),
        ("sqrt(-1)", "cannot compute it: math domain error"),
        ("(-8) ** 0.5", "not a real number"),
        ("1e999", "too large"),
        ("10 ** 400", "too large"),
        ("round(5, -10 ** 300)", "round()'s digits"),
        ("min(1)", "min() takes 2 to 20 arguments, not 1"),
        ("max(*[1, 2])", "plain positional arguments"),
    ],
)
async def test_calculator_refuses_with_a_reason(expression: str, reason: str) -> None:
    outcome = await _call(calculator, {"expression": expression})
    assert not outcome.ok
    assert outcome.error is not None and reason in outcome.error


async def test_calculator_never_executes_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    expression = f"__import__('os').system('touch {marker}')"
    outcome = await _call(calculator, {"expression": expression})
    assert not outcome.ok
    assert not marker.exists()


async def test_calculator_refuses_huge_powers_without_computing_them() -> None:
    started = time.monotonic()
    outcome = await _call(calculator, {"expression": "9 ** 9 ** 9"})
    # Computing 9**387420489 takes minutes; the refusal comes from the operands' size.
    assert time.monotonic() - started < 1
    assert not outcome.ok and outcome.error is not None and "too large" in outcome.error


async def test_calculator_limits_the_expression_length() -> None:
    outcome = await _call(calculator, {"expression": "1+" * 100 + "1"})
    assert not outcome.ok
    assert outcome.error is not None and "expression" in outcome.error
    assert "200 characters" in outcome.error


# --- search_knowledge ------------------------------------------------------------------


async def test_search_knowledge_finds_the_article(resources: Resources) -> None:
    result = _ok(await _call(search_knowledge, {"query": "reset my password", "k": 2}, resources))
    passages = result["passages"]
    assert len(passages) in (1, 2)
    assert passages[0]["id"].startswith("reset-password#")
    assert passages[0]["score"] > 0
    assert [p["score"] for p in passages] == sorted((p["score"] for p in passages), reverse=True)


async def test_search_knowledge_default_k_is_four(resources: Resources) -> None:
    result = _ok(await _call(search_knowledge, {"query": "password sync billing"}, resources))
    assert len(result["passages"]) == 4


async def test_search_knowledge_without_a_match_is_empty(resources: Resources) -> None:
    result = _ok(await _call(search_knowledge, {"query": "zyxwv qqqq"}, resources))
    assert result == {"passages": []}


async def test_search_knowledge_bounds_k(resources: Resources) -> None:
    outcome = await _call(search_knowledge, {"query": "password", "k": 11}, resources)
    assert not outcome.ok and outcome.error is not None and "k:" in outcome.error


async def test_tools_refuse_a_worker_without_resources() -> None:
    with pytest.raises(KeelUserError, match="Resources"):
        await _call(search_knowledge, {"query": "password"}, None)


# --- create_ticket ---------------------------------------------------------------------

TICKET: dict[str, JsonValue] = {
    "subject": "Sync stuck on iPad",
    "description": "Customer tried signing out and in; notes still do not sync.",
    "priority": "high",
}


async def _tickets(sessions: async_sessionmaker[AsyncSession]) -> list[TicketRow]:
    async with sessions() as session:
        return list((await session.exec(select(TicketRow).order_by(TicketRow.id))).all())


async def test_create_ticket_writes_one_row(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    result = _ok(await _call(create_ticket, TICKET, resources))
    rows = await _tickets(sessions)
    assert [(r.id, r.run_id, r.subject, r.description, r.priority) for r in rows] == [
        (result["ticket_id"], RUN, TICKET["subject"], TICKET["description"], "high")
    ]
    assert rows[0].idempotency_key == f"{RUN}/step-1/0"
    assert result == {
        "ticket_id": rows[0].id,
        "subject": TICKET["subject"],
        "priority": "high",
        "created": True,
    }


async def test_create_ticket_retried_returns_the_first_ticket(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = _ok(await _call(create_ticket, TICKET, resources))
    # A retry of the same call (same key), even with edited arguments, writes nothing.
    again = _ok(await _call(create_ticket, {**TICKET, "subject": "Edited"}, resources))
    assert first["created"] is True
    assert again == {**first, "created": False}
    assert len(await _tickets(sessions)) == 1


async def test_create_ticket_concurrent_attempts_write_once(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    outcomes = await asyncio.gather(*(_call(create_ticket, TICKET, resources) for _ in range(6)))
    results = [_ok(o) for o in outcomes]
    assert sorted(r["created"] for r in results) == [False] * 5 + [True]
    assert len({r["ticket_id"] for r in results}) == 1
    assert len(await _tickets(sessions)) == 1


async def test_create_ticket_different_calls_write_two_rows(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    one = _ok(await _call(create_ticket, TICKET, resources, key=f"{RUN}/step-1/0"))
    two = _ok(await _call(create_ticket, TICKET, resources, key=f"{RUN}/step-2/0"))
    assert one["created"] and two["created"]
    assert one["ticket_id"] != two["ticket_id"]
    rows = await _tickets(sessions)
    assert [r.id for r in rows] == [one["ticket_id"], two["ticket_id"]]


async def test_create_ticket_checks_its_arguments(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    outcome = await _call(create_ticket, {**TICKET, "priority": "urgent"}, resources)
    assert not outcome.ok and outcome.error is not None and "priority" in outcome.error
    outcome = await _call(create_ticket, {**TICKET, "subject": "x" * 201}, resources)
    assert not outcome.ok and outcome.error is not None and "subject" in outcome.error
    assert await _tickets(sessions) == []


async def test_create_ticket_needs_a_key(resources: Resources) -> None:
    with pytest.raises(KeelUserError, match="idempotency key"):
        await _call(create_ticket, TICKET, resources, key="")
