"""The in-workflow checkpointer revives exactly the state's models, and nothing else.

LangGraph's `JsonPlusSerializer` with an explicit `allowed_msgpack_modules` list does not
raise on a type outside the list: it logs a warning, emits a `msgpack_blocked` serde event
and returns the model's field dict instead of the model.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.event_hooks import SerdeEvent, register_serde_event_listener
from pydantic import BaseModel

from keel.schemas.guards import GuardFinding
from keel.schemas.model import Usage
from keel.schemas.retrieval import Passage
from keel.schemas.reviews import Citation, ReviewDecision, Verification
from keel.schemas.routing import Ledger, LedgerEntry
from keel.schemas.runs import AgentState, Outcome, RunResult
from keel.schemas.scoring import Signals
from workflows.agents.support.graph import Draft, SupportState
from workflows.checkpoint import checkpointer_for, state_models

CITATION = Citation(passage_id="sync#stuck", title="Sync: Stuck syncing")
DRAFT = Draft(
    answer="Sign out and back in.", citations=[CITATION], confidence=0.7, provider="p", model="m"
)

_PASSAGE = {"id": "sync#stuck", "document_id": "sync", "title": "Sync", "text": "Sign out."}


class NotInState(BaseModel):
    """A model no graph state mentions."""

    secret: str


@pytest.fixture
def serde_events() -> Iterator[list[SerdeEvent]]:
    events: list[SerdeEvent] = []
    unregister = register_serde_event_listener(events.append)
    yield events
    unregister()


def _round_trip(saver: InMemorySaver, obj: Any) -> Any:
    return saver.serde.loads_typed(saver.serde.dumps_typed(obj))


def test_state_models_finds_every_nested_model() -> None:
    assert state_models(SupportState) == {
        SupportState,
        Draft,
        Passage,
        Citation,
        ReviewDecision,
        RunResult,
        Outcome,
        Ledger,
        LedgerEntry,
        Usage,
        GuardFinding,
        Verification,
        Signals,
    }
    # Parents are not part of the state: only field annotations are followed.
    assert AgentState not in state_models(SupportState)


def test_state_models_of_a_flat_model_is_itself() -> None:
    assert state_models(Citation) == {Citation}


def test_state_models_follows_containers_and_unions() -> None:
    class Holder(BaseModel):
        by_id: dict[str, list[Citation]]
        maybe: tuple[Outcome, ...] | None = None

    assert state_models(Holder) == {Holder, Citation, Outcome, Signals}


async def test_each_checkpointer_has_its_own_memory() -> None:
    # Every workflow run compiles its graph with a fresh checkpointer; none may share threads.
    first, second = checkpointer_for(SupportState), checkpointer_for(SupportState)
    config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    await first.aput(config, empty_checkpoint(), {"source": "loop", "step": 1}, {})
    assert await first.aget_tuple(config) is not None
    assert await second.aget_tuple(config) is None


@pytest.mark.parametrize(
    "obj",
    [
        DRAFT,
        RunResult(
            status="completed", outcome=Outcome(answer="A", citations=[CITATION], confidence=1)
        ),
        ReviewDecision(action="edit", answer="B"),
        SupportState(input={"question": "sync is stuck"}, review_threshold=0.6, draft=DRAFT),
    ],
    ids=lambda obj: type(obj).__name__,
)
def test_state_models_round_trip_as_models(obj: BaseModel, serde_events: list[SerdeEvent]) -> None:
    saver = checkpointer_for(SupportState)
    revived = _round_trip(saver, obj)
    assert revived == obj
    assert type(revived) is type(obj)
    assert serde_events == []


async def test_checkpoint_with_state_values_round_trips(serde_events: list[SerdeEvent]) -> None:
    saver = checkpointer_for(SupportState)
    config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"draft": DRAFT, "passages": [Passage(**_PASSAGE)]}
    versions = {"draft": 1, "passages": 1}
    checkpoint["channel_versions"] = versions
    stored = await saver.aput(config, checkpoint, {"source": "loop", "step": 1}, versions)

    loaded = await saver.aget_tuple(stored)
    assert loaded is not None
    assert loaded.checkpoint["channel_values"] == {
        "draft": DRAFT,
        "passages": [Passage(**_PASSAGE)],
    }
    assert serde_events == []


def test_model_outside_the_state_is_not_revived(
    serde_events: list[SerdeEvent], caplog: pytest.LogCaptureFixture
) -> None:
    saver = checkpointer_for(SupportState)
    with caplog.at_level("WARNING", logger="langgraph.checkpoint.serde.jsonplus"):
        revived = _round_trip(saver, NotInState(secret="s"))

    # Refused softly: the raw fields come back, never an instance of the class.
    assert revived == {"secret": "s"}
    assert not isinstance(revived, NotInState)
    assert serde_events == [{"kind": "msgpack_blocked", "module": __name__, "name": "NotInState"}]
    # LangGraph logs each blocked type once per process, so only check when it did log.
    blocked = [
        r.getMessage() for r in caplog.records if "Blocked deserialization" in r.getMessage()
    ]
    assert all("NotInState" in message for message in blocked)


def test_the_allowlist_is_what_refuses_it(serde_events: list[SerdeEvent]) -> None:
    # The same model is revived by a checkpointer built for a state that holds it.
    class Holder(BaseModel):
        item: NotInState

    assert _round_trip(checkpointer_for(Holder), NotInState(secret="s")) == NotInState(secret="s")
    assert serde_events == []
