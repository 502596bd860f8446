"""The `support` agent: answer a customer's question from the help centre, or ask a person.

classify → retrieve → answer → check ─┬─────────────→ finalize
                                      └→ review ─────→ finalize

`retrieve` does I/O and runs as an activity (`support.retrieve`); its implementation lives
in `tools/support.py` and reaches the graph through `SupportIO`. `classify` and `answer`
run in the workflow and ask the model router, which makes each model attempt its own
`model.call` activity. `check`, `review` and `finalize` only decide. `review` calls
LangGraph's `interrupt()`: the workflow opens a review and resumes the graph with the
reviewer's decision.
"""

from datetime import timedelta
from typing import Any, Protocol

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from pydantic import BaseModel, Field
from temporalio.common import RetryPolicy

from keel.agents import AgentSpec
from keel.schemas.model import Message, ModelRequest
from keel.schemas.retrieval import Passage
from keel.schemas.reviews import Citation, ReviewDecision, ReviewReason, ReviewRequest
from keel.schemas.runs import AgentState, Outcome, RunResult
from workflows.routing import router

__all__ = [
    "CATEGORIES",
    "SPEC",
    "Draft",
    "SupportIO",
    "SupportInput",
    "SupportState",
    "answer",
    "build_graph",
    "check",
    "classify",
    "finalize",
    "review",
]

CATEGORIES = (
    "account: password sign login reset email two factor authentication 2fa security sso",
    "billing: plan price invoice refund charge payment subscription cancel upgrade downgrade",
    "sync: sync offline conflict device desktop mobile stuck update",
    "sharing: share permission workspace member role invite guest link",
    "export: export import pdf markdown backup evernote download",
    "integrations: slack google drive zapier integration connect calendar",
    "other:",
)
"""Labels the classifier chooses from: `name: keywords` (the keywords guide `local`)."""


class SupportInput(BaseModel):
    """A customer's question."""

    question: str = Field(min_length=3, max_length=4_000, description="The customer's question.")


class Draft(BaseModel):
    """The model's proposed answer."""

    answer: str
    citations: list[Citation]
    confidence: float = Field(ge=0.0, le=1.0)
    provider: str
    model: str


class SupportState(AgentState):
    """The support graph's state."""

    category: str | None = None
    passages: list[Passage] = Field(default_factory=list)
    draft: Draft | None = None
    review_reason: ReviewReason | None = None
    decision: ReviewDecision | None = None

    @property
    def question(self) -> str:
        """The customer's question."""
        return SupportInput.model_validate(self.input).question


class SupportIO(Protocol):
    """The support graph's I/O node; it runs as an activity."""

    async def retrieve(self, state: dict[str, Any]) -> dict[str, Any]:
        """Set `passages`."""
        ...


_SYSTEM = (
    "You are Quillpad's support assistant. Answer the customer's question only from the "
    "documents given, cite every document you use as [document id], and say so when the "
    "documents do not contain the answer. End with a line 'Confidence: <0 to 1>'."
)


async def classify(state: SupportState) -> dict[str, Any]:
    """Pick the question's category."""
    response = await router().complete(
        ModelRequest(
            messages=[Message(role="user", content=state.question)],
            labels=list(CATEGORIES),
            max_output_tokens=16,
        ),
        step="classify",
    )
    return {"category": response.label}


async def answer(state: SupportState) -> dict[str, Any]:
    """Draft a grounded answer that cites the passages it used."""
    response = await router().complete(
        ModelRequest(
            messages=[
                Message(role="system", content=_SYSTEM),
                Message(role="user", content=state.question),
            ],
            documents=state.passages,
        ),
        step="answer",
    )
    titles = {p.id: p.title for p in state.passages}
    draft = Draft(
        answer=response.text,
        citations=[
            Citation(passage_id=c, title=titles[c]) for c in response.citations if c in titles
        ],
        # A provider with no evidence of its own certainty gets none: a person looks.
        confidence=response.confidence or 0.0,
        provider=response.provider,
        model=response.model,
    )
    return {"draft": draft}


def check(state: SupportState) -> dict[str, Any]:
    """Decide whether a person must look at the draft before the customer sees it."""
    assert state.draft is not None
    if state.category == "other":
        return {"review_reason": "off_topic"}
    if state.draft.confidence < state.review_threshold or not state.draft.citations:
        return {"review_reason": "low_confidence"}
    return {"review_reason": None}


def review(state: SupportState) -> dict[str, Any]:
    """Stop the graph until a reviewer decides (the workflow resumes it with the decision)."""
    assert state.draft is not None and state.review_reason is not None
    request = ReviewRequest(
        reason=state.review_reason,
        question=state.question,
        proposed_answer=state.draft.answer,
        citations=state.draft.citations,
        confidence=state.draft.confidence,
        threshold=state.review_threshold,
        passages=state.passages,
    )
    decision = interrupt(request.model_dump(mode="json"))
    return {"decision": ReviewDecision.model_validate(decision)}


def finalize(state: SupportState) -> dict[str, Any]:
    """Turn the draft, and the decision if there was one, into the run's result."""
    draft = state.draft
    assert draft is not None
    decision = state.decision
    if decision is not None and decision.action == "reject":
        outcome = Outcome(answer=None, confidence=draft.confidence, reviewed=True)
        return {"result": RunResult(status="rejected", outcome=outcome)}
    answer = decision.answer if decision is not None and decision.answer else draft.answer
    outcome = Outcome(
        answer=answer,
        citations=draft.citations,
        confidence=draft.confidence,
        reviewed=decision is not None,
    )
    return {"result": RunResult(status="completed", outcome=outcome)}


async def _after_check(state: SupportState) -> str:
    # async: a sync router would run on a thread pool, which the workflow sandbox forbids.
    return "review" if state.review_reason else "finalize"


def _io_node(summary: str) -> dict[str, Any]:
    """Activity options of an I/O node; its summary in the Temporal UI starts with `summary`."""
    return {
        "execute_in": "activity",
        "start_to_close_timeout": timedelta(seconds=30),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(milliseconds=500),
            maximum_interval=timedelta(seconds=10),
            maximum_attempts=5,
        ),
        "summary_fn": lambda args, kwargs: f"{summary}: {_question_of(args[0])[:80]}",
    }


def _question_of(state: SupportState | dict[str, Any]) -> str:
    if isinstance(state, SupportState):
        return state.question
    return str(state["input"].get("question", ""))


def build_graph(io: SupportIO) -> StateGraph[SupportState, None, SupportState, SupportState]:
    """The support graph, with `io` providing its I/O nodes."""
    in_workflow = {"execute_in": "workflow"}
    g = StateGraph(SupportState)
    g.add_node("classify", classify, metadata=in_workflow)
    g.add_node("retrieve", io.retrieve, metadata=_io_node("retrieve"))
    g.add_node("answer", answer, metadata=in_workflow)
    g.add_node("check", check, metadata=in_workflow)
    g.add_node("review", review, metadata=in_workflow)
    g.add_node("finalize", finalize, metadata=in_workflow)
    g.add_edge(START, "classify")
    g.add_edge("classify", "retrieve")
    g.add_edge("retrieve", "answer")
    g.add_edge("answer", "check")
    g.add_conditional_edges("check", _after_check, ["review", "finalize"])
    g.add_edge("review", "finalize")
    g.add_edge("finalize", END)
    return g


SPEC = AgentSpec(
    name="support",
    description=(
        "Answers a customer's question about Quillpad from the help centre, citing the "
        "articles it used; a question it cannot answer confidently goes to a reviewer."
    ),
    input_model=SupportInput,
    text_field="question",
    graph="worker.agents:support_graph",
    routes=("default",),
)
