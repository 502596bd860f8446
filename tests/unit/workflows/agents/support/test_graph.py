"""The support graph's decisions, its wiring, and one interrupted run under plain LangGraph.

The LangGraph plugin is not involved: LangGraph runs the graph in-process and ignores the
Temporal keys in node metadata, which is enough to test the graph's own logic.
"""

from typing import Any

from langgraph.checkpoint.serde.event_hooks import SerdeEvent, register_serde_event_listener
from langgraph.types import Command

from keel.schemas.guards import GuardFinding
from keel.schemas.policy import RunPolicy
from keel.schemas.retrieval import Passage
from keel.schemas.reviews import Citation, ReviewDecision, ReviewRequest, Verification
from keel.schemas.scoring import ScoreModel
from workflows.agents.support.graph import (
    Draft,
    SupportState,
    _after_check,
    build_graph,
    finalize,
    judge,
)
from workflows.checkpoint import checkpointer_for

QUESTION = "How do I reset my password?"
CITATION = Citation(passage_id="account#reset", title="Account: Reset your password")
PASSAGE = Passage(
    id="account#reset",
    document_id="account",
    title="Account: Reset your password",
    text="Open Settings, then Security, then Reset password.",
    score=0.9,
)


def _draft(*, confidence: float = 0.9, citations: list[Citation] | None = None) -> Draft:
    return Draft(
        answer="Open Settings > Security > Reset password.",
        citations=[CITATION] if citations is None else citations,
        confidence=confidence,
        provider="fake",
        model="fake-1",
    )


def _state(**fields: Any) -> SupportState:
    base: dict[str, Any] = {
        "input": {"question": QUESTION},
        "review_threshold": 0.6,
        "category": "account",
        "passages": [PASSAGE],
        "draft": _draft(),
    }
    return SupportState(**(base | fields))


# --- check's verdict and its router -----------------------------------------------------

POLICY = RunPolicy(threshold=0.6)


def _reason(state: SupportState, policy: RunPolicy = POLICY, findings: Any = ()) -> Any:
    return judge(state, policy, list(findings))["review_reason"]


async def test_confident_cited_draft_needs_no_review() -> None:
    update = judge(_state(), POLICY, [])
    signals = update.pop("signals")
    assert update == {"review_reason": None, "findings": [], "review_threshold": 0.6}
    assert signals.confidence == 0.9 and signals.verdict is None
    assert await _after_check(_state(**update)) == "finalize"


def test_under_a_score_model_the_draft_carries_the_score_as_its_confidence() -> None:
    doubting = POLICY.model_copy(update={"score": ScoreModel(intercept=-2.0, weights={})})
    update = judge(_state(), doubting, [])
    assert update["review_reason"] == "low_confidence"
    assert update["draft"].confidence == 0.119  # 1 / (1 + e²)
    assert update["signals"].confidence == 0.9  # the answer's own, kept as evidence


async def test_confidence_below_threshold_asks_for_review() -> None:
    update = judge(_state(draft=_draft(confidence=0.59)), POLICY, [])
    assert update["review_reason"] == "low_confidence"
    assert await _after_check(_state(**update)) == "review"


def test_confidence_at_threshold_is_enough() -> None:
    assert _reason(_state(draft=_draft(confidence=0.6))) is None


def test_threshold_comes_from_the_policy_and_its_node() -> None:
    assert _reason(_state(), RunPolicy(threshold=0.95)) == "low_confidence"
    lenient = RunPolicy.model_validate({"threshold": 0.95, "nodes": {"check": {"threshold": 0.5}}})
    assert judge(_state(), lenient, [])["review_threshold"] == 0.5
    assert _reason(_state(), lenient) is None


async def test_uncited_draft_asks_for_review() -> None:
    update = judge(_state(draft=_draft(confidence=1.0, citations=[])), POLICY, [])
    assert update["review_reason"] == "low_confidence"
    assert await _after_check(_state(**update)) == "review"


async def test_off_topic_question_asks_for_review_even_when_confident() -> None:
    update = judge(_state(category="other", draft=_draft(confidence=1.0)), POLICY, [])
    assert update["review_reason"] == "off_topic"
    assert await _after_check(_state(**update)) == "review"


async def test_a_message_triage_escalates_goes_to_a_person_even_when_confident() -> None:
    policy = RunPolicy(threshold=0.6, triage_escalate=["charge_dispute"])
    state = _state(category=None, triage="charge_dispute", draft=_draft(confidence=1.0))
    update = judge(state, policy, [])
    assert update["review_reason"] == "needs_person"
    assert await _after_check(_state(**update)) == "review"
    assert _reason(_state(category=None, triage="general"), policy) is None


def test_a_guard_finding_asks_for_review_with_its_reason() -> None:
    pii = GuardFinding(kind="pii", field="question", label="EMAIL_ADDRESS")
    assert _reason(_state(), findings=[pii]) == "pii"
    assert _reason(_state(), RunPolicy(threshold=0.6, escalate_on=[]), [pii]) is None


async def test_the_verifiers_verdict_asks_for_review_even_when_confident() -> None:
    partial = Verification(verdict="partial", removed=["Padding."], missing="sso")
    update = judge(_state(verification=partial), POLICY, [])
    assert update["review_reason"] == "partial_answer"
    assert await _after_check(_state(**update)) == "review"
    unanswered = _state(verification=Verification(verdict="not_answered"))
    assert _reason(unanswered) == "not_answered"
    assert _reason(_state(verification=Verification(verdict="answered"))) is None


# --- finalize ---------------------------------------------------------------------------


def test_finalize_without_decision_completes_with_the_draft() -> None:
    result = finalize(_state(draft=_draft(confidence=0.8)))["result"]
    assert result.status == "completed"
    assert result.outcome.answer == "Open Settings > Security > Reset password."
    assert result.outcome.citations == [CITATION]
    assert result.outcome.confidence == 0.8
    assert result.outcome.reviewed is False


def test_finalize_after_approval_keeps_the_draft_and_marks_it_reviewed() -> None:
    state = _state(decision=ReviewDecision(action="approve"))
    result = finalize(state)["result"]
    assert result.status == "completed"
    assert result.outcome.answer == "Open Settings > Security > Reset password."
    assert result.outcome.citations == [CITATION]
    assert result.outcome.reviewed is True


def test_finalize_after_edit_uses_the_edited_answer() -> None:
    state = _state(decision=ReviewDecision(action="edit", answer="Use the reset link."))
    result = finalize(state)["result"]
    assert result.status == "completed"
    assert result.outcome.answer == "Use the reset link."
    assert result.outcome.reviewed is True


def test_finalize_after_rejection_has_no_answer() -> None:
    state = _state(decision=ReviewDecision(action="reject", comment="wrong product"))
    result = finalize(state)["result"]
    assert result.status == "rejected"
    assert result.outcome.answer is None
    assert result.outcome.citations == []
    assert result.outcome.reviewed is True


# --- the graph --------------------------------------------------------------------------


NODES = ("classify", "retrieve", "answer", "verify", "check", "review", "finalize")


def test_graph_has_exactly_the_documented_nodes() -> None:
    app = build_graph().compile()
    assert set(app.nodes) - {"__start__"} == set(NODES)


def test_every_node_runs_in_the_workflow_and_its_io_as_activities() -> None:
    # `retrieve` runs `retrieval.search`, the model nodes `model.call`: each its own activity.
    builder = build_graph()
    where = {name: (node.metadata or {}).get("execute_in") for name, node in builder.nodes.items()}
    assert where == dict.fromkeys(NODES, "workflow")


def _config(thread: str) -> Any:
    return {"configurable": {"thread_id": thread}}


async def _judged(confidence: float, thread: str, verification: Verification | None = None) -> Any:
    """A graph whose model nodes have answered and `check` has judged: it goes on from there.

    `classify`, `answer` and `check` ask the workflow's model router and guards, so they
    only run inside a workflow (the integration tests); here their results are written as
    theirs, `check`'s by the same `judge` it applies.
    """
    app = build_graph().compile(checkpointer=checkpointer_for(SupportState))
    config = _config(thread)
    values = {
        "input": {"question": QUESTION},
        "review_threshold": 0.6,
        "category": "account",
        "passages": [PASSAGE],
        "draft": _draft(confidence=confidence),
    }
    if verification is not None:
        values["verification"] = verification
    values |= judge(SupportState(**values), POLICY, [])
    await app.aupdate_state(config, values, as_node="check")
    return app, config


async def test_confident_run_finishes_without_interrupt() -> None:
    app, config = await _judged(0.9, "confident")
    final = await app.ainvoke(None, config)
    assert "__interrupt__" not in final
    assert final["result"].outcome.answer == "Open Settings > Security > Reset password."
    assert final["result"].outcome.reviewed is False


async def test_unsure_run_stops_for_review_and_resumes_with_the_edit() -> None:
    serde_events: list[SerdeEvent] = []
    unregister = register_serde_event_listener(serde_events.append)
    try:
        await _unsure_run()
    finally:
        unregister()
    # The checkpointer's allowlist covered everything the run stored (no type was blocked).
    assert serde_events == []


async def _unsure_run() -> None:
    partial = Verification(verdict="partial", removed=["Padding."], missing="sso")
    app, config = await _judged(0.2, "unsure", partial)
    await app.ainvoke(None, config)
    snapshot = await app.aget_state(config)
    assert snapshot.next == ("review",)
    assert len(snapshot.interrupts) == 1
    request = ReviewRequest.model_validate(snapshot.interrupts[0].value)
    assert request.reason == "partial_answer"
    assert request.verification == partial
    assert request.question == QUESTION
    assert request.confidence == 0.2
    assert request.threshold == 0.6
    assert request.citations == [CITATION]
    assert request.passages == [PASSAGE]

    final = await app.ainvoke(Command(resume={"action": "edit", "answer": "X"}), config)
    assert final["result"].status == "completed"
    assert final["result"].outcome.answer == "X"
    assert final["result"].outcome.reviewed is True
    assert (await app.aget_state(config)).next == ()
