"""The `support` agent: answer a customer's question from the help centre, or ask a person.

classify → retrieve → answer → verify → check ─┬─────────────→ finalize
                                               └→ review ─────→ finalize

`classify` is triage: it sorts the customer's message into the agent's triage labels
(`spec.TRIAGE_LABELS`), and a message in a label the policy's `triage_escalate` lists goes
to a person at `check` (reason `needs_person`) whatever the answer's confidence. Runs
started before triage picked a topic instead, and a question on no topic was `off_topic`.

`retrieve` runs in the workflow and searches the help centre (collection `quillpad`) with
one `retrieval.search` local activity: a search of the worker's own index takes
milliseconds, and a round trip through the task queue would cost the server more than the
search itself (its marker in the history carries the node's summary). `classify` and
`answer` run in the workflow and ask the
model router, which makes each model attempt its own `model.call` activity; the passages
reach the model as labelled data (`tools.models.spotlight`) and the answer cites them by
id. `verify` asks the `judge` route (the keyless `local` verifier unless configured)
whether each sentence of the answer is supported by the passages it cites and speaks to
the question; the answer is trimmed to those that are, and a `partial` or `not_answered`
verdict sends it to a person. `check`, `review` and `finalize` only decide. `review` calls
LangGraph's `interrupt()`: the workflow opens a review and resumes the graph with the
reviewer's decision.
"""

from typing import Any

# langgraph ships `py.typed` at its namespace root, which pyright does not look at.
from langgraph.graph import END, START, StateGraph  # pyright: ignore[reportMissingTypeStubs]
from langgraph.types import interrupt
from pydantic import BaseModel, Field
from temporalio import workflow

from keel.schemas.guards import GuardFinding, GuardText
from keel.schemas.model import JudgeInput, Message, ModelRequest
from keel.schemas.policy import RunPolicy
from keel.schemas.retrieval import RETRIEVAL_SEARCH, Passage, SearchQuery, SearchResult
from keel.schemas.reviews import (
    Citation,
    ReviewDecision,
    ReviewReason,
    ReviewRequest,
    Verification,
)
from keel.schemas.routing import JUDGE_ROUTE
from keel.schemas.runs import AgentState, Outcome, RunResult
from keel.schemas.scoring import Signals
from workflows.activity_options import RETRIEVAL_SEARCH_OPTIONS
from workflows.agents.support.spec import TRIAGE_LABELS, SupportInput
from workflows.policy import node_threshold, passage_findings, support_reason, unquoted_pii
from workflows.run_context import run_context

__all__ = [
    "CATEGORIES",
    "COLLECTION",
    "PASSAGES",
    "Draft",
    "SupportState",
    "answer",
    "build_graph",
    "check",
    "classify",
    "finalize",
    "judge",
    "retrieve",
    "review",
    "signals",
    "verify",
]

CATEGORIES = (
    "account: password sign login reset email two factor authentication 2fa security sso",
    "billing: plan price invoice refund charge payment subscription cancel upgrade downgrade",
    "sync: sync offline conflict device desktop mobile stuck update version history restore",
    "sharing: share permission workspace member role invite guest link",
    "export: export import pdf markdown backup evernote download",
    "integrations: slack google drive zapier integration connect calendar",
    "other:",
)
"""Labels the classifier chose from before triage: `name: keywords` (for `local`)."""

COLLECTION = "quillpad"
"""The collection `retrieve` searches: the help-centre articles the worker ships."""
PASSAGES = 4
"""How many passages `retrieve` hands to `answer`."""


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
    triage: str | None = Field(default=None, description="The message's triage label.")
    triage_confidence: float | None = Field(
        default=None, description="Triage's probability for its label."
    )
    passages: list[Passage] = Field(default_factory=list[Passage])
    draft: Draft | None = None
    verification: Verification | None = None
    review_reason: ReviewReason | None = None
    signals: Signals | None = Field(default=None, description="The evidence `check` weighed.")
    findings: list[GuardFinding] = Field(default_factory=list[GuardFinding])
    cost_usd: float = Field(default=0.0, description="The run's model spend at `check`.")
    decision: ReviewDecision | None = None

    @property
    def question(self) -> str:
        """The customer's question."""
        return SupportInput.model_validate(self.input).question


_SYSTEM = (
    "You are Quillpad's support assistant. Answer the customer's question only from the "
    "help-centre passages given, cite every passage you use as [passage id], and say so "
    "when the passages do not contain the answer. End with a line 'Confidence: <0 to 1>'."
)


# Patch id: `retrieve` searches in a local activity.
_SEARCH_IN_WORKER = "keel.support-search-local-activity"
# Patch id: `classify` triages the message instead of picking its topic.
_TRIAGE = "keel.support-triage"


async def retrieve(state: SupportState) -> dict[str, Any]:
    """Find the help-centre passages closest to the question (one `retrieval.search`)."""
    # Runs started before this patch searched with an activity through the task queue
    # (with the same options: none of them is one a local activity lacks).
    execute = (
        workflow.execute_local_activity
        if workflow.patched(_SEARCH_IN_WORKER)
        else workflow.execute_activity
    )
    result = await execute(
        RETRIEVAL_SEARCH,
        SearchQuery(collection=COLLECTION, query=state.question, k=PASSAGES),
        result_type=SearchResult,
        **RETRIEVAL_SEARCH_OPTIONS.for_local_activity(summary=f"retrieve: {state.question[:80]}"),
    )
    return {"passages": result.passages}


async def classify(state: SupportState) -> dict[str, Any]:
    """Triage the message (runs started before triage: pick the question's topic)."""
    if workflow.patched(_TRIAGE):
        triaged = await run_context().router.complete(
            ModelRequest(
                messages=[Message(role="user", content=state.question)],
                labels=list(TRIAGE_LABELS),
                classifier="support",
                max_output_tokens=16,
            ),
            step="classify",
        )
        return {"triage": triaged.label, "triage_confidence": triaged.confidence}
    response = await run_context().router.complete(
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
    response = await run_context().router.complete(
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


# Patch id: `verify` judges the draft and trims it (runs before it passed straight through).
_VERIFY = "keel.support-verify"


async def verify(state: SupportState) -> dict[str, Any]:
    """Judge the draft against its cited passages and the question; trim it to what holds.

    The judge (route `judge`) drops the sentences no cited passage supports and those off
    the question; the draft keeps the rest, and the citations of the passages they come
    from. Its verdict goes to `check`.
    """
    if not workflow.patched(_VERIFY):
        return {}
    draft = state.draft
    assert draft is not None
    ids = {c.passage_id for c in draft.citations}
    cited = {p.id: p for p in state.passages if p.id in ids}
    response = await run_context().router.complete(
        ModelRequest(
            route=JUDGE_ROUTE,
            messages=[Message(role="user", content=state.question)],
            documents=list(cited.values()),
            judge=JudgeInput(question=state.question, answer=draft.answer),
            max_output_tokens=256,
        ),
        step="verify",
    )
    judgement = response.judgement
    assert judgement is not None  # every provider answers a judge request with one
    verification = Verification(
        verdict=judgement.verdict,
        removed=judgement.removed,
        missing=judgement.missing,
        sentences=len(judgement.sentences),
    )
    kept = judgement.kept
    if not verification.removed or not kept:  # nothing to trim, or nothing left to send
        return {"verification": verification}
    # A citation stays when a kept sentence names it or is quoted from its passage.
    sources = [
        c
        for c in draft.citations
        if any(f"[{c.passage_id}]" in s or s in cited[c.passage_id].text for s in kept)
    ]
    answer = " ".join(kept)
    trimmed = draft.model_copy(update={"answer": answer, "citations": sources or draft.citations})
    return {"verification": verification, "draft": trimmed}


async def check(state: SupportState) -> dict[str, Any]:
    """Screen the question, the passages and the draft; decide whether a person must look.

    PII the draft quotes from a passage it cites was published by the help centre, not
    given by the customer, and does not count (`workflows.policy.unquoted_pii`).
    """
    assert state.draft is not None
    context = run_context()
    guards = context.screening
    texts = [
        GuardText(field="question", text=state.question),
        GuardText(field="draft", text=state.draft.answer),
    ]
    cited = {c.passage_id for c in state.draft.citations}
    published = [p.text for p in state.passages if p.id in cited]
    screened = await guards.screen(texts, step="check")
    findings = passage_findings(state.passages) + unquoted_pii(
        screened, "draft", state.draft.answer, published
    )
    return {**judge(state, guards.policy, findings), "cost_usd": context.router.ledger.total_usd}


def judge(state: SupportState, policy: RunPolicy, findings: list[GuardFinding]) -> dict[str, Any]:
    """The escalation policy's verdict on the draft (`workflows.policy`), as a state update.

    It weighs the guards' findings (PII, policy terms, injected instructions in the
    question or in passages), the triage label (or, before triage, the topic) and the
    draft's confidence against the threshold of the `check` node, which it records as the
    one the review shows. Under a policy with a score model, the draft's confidence becomes
    the combined score of its `signals`, and the score meets the threshold.
    """
    draft = state.draft
    assert draft is not None
    evidence = signals(state)
    score = policy.score.score(evidence) if policy.score is not None else None
    reason = support_reason(
        policy,
        "check",
        off_topic=state.category == "other",
        confidence=draft.confidence,
        cited=bool(draft.citations),
        findings=findings,
        verdict=state.verification.verdict if state.verification else None,
        triage=state.triage,
        score=score,
    )
    threshold = node_threshold(policy, "check")
    update: dict[str, Any] = {
        "review_reason": reason,
        "findings": findings,
        "review_threshold": threshold,
        "signals": evidence,
    }
    if score is not None:
        update["draft"] = draft.model_copy(update={"confidence": score})
    return update


def signals(state: SupportState) -> Signals:
    """The evidence on the draft: its confidence, the verdict, triage's and retrieval's."""
    assert state.draft is not None
    verification = state.verification
    scores = sorted((p.score for p in state.passages), reverse=True)
    top = max(scores[0], 0.0) if scores else 0.0
    runner_up = max(scores[1], 0.0) if len(scores) > 1 else 0.0
    return Signals(
        confidence=state.draft.confidence,
        verdict=verification.verdict if verification else None,
        removed=(
            min(1.0, len(verification.removed) / verification.sentences)
            if verification and verification.sentences
            else 0.0
        ),
        triage=state.triage_confidence,
        top_score=top,
        margin=(top - runner_up) / top if top > 0 else 0.0,
    )


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
        cost_usd=state.cost_usd,
        passages=state.passages,
        node="check",
        findings=state.findings,
        verification=state.verification,
        triage=state.triage,
        signals=state.signals,
    )
    decision = interrupt(request.model_dump(mode="json"))
    return {"decision": ReviewDecision.model_validate(decision)}


def finalize(state: SupportState) -> dict[str, Any]:
    """Turn the draft, and the decision if there was one, into the run's result."""
    draft = state.draft
    assert draft is not None
    decision = state.decision
    if decision is not None and decision.action == "reject":
        outcome = Outcome(
            answer=None, confidence=draft.confidence, reviewed=True, signals=state.signals
        )
        return {"result": RunResult(status="rejected", outcome=outcome)}
    answer = decision.answer if decision is not None and decision.answer else draft.answer
    chosen = decision.cited([*state.passages, *draft.citations]) if decision else None
    outcome = Outcome(
        answer=answer,
        citations=draft.citations if chosen is None else chosen,
        confidence=draft.confidence,
        reviewed=decision is not None,
        signals=state.signals,
    )
    return {"result": RunResult(status="completed", outcome=outcome)}


async def _after_check(state: SupportState) -> str:
    # async: a sync router would run on a thread pool, which the workflow sandbox forbids.
    return "review" if state.review_reason else "finalize"


def build_graph() -> StateGraph[SupportState, None, SupportState, SupportState]:
    """The support graph; every node runs in the workflow, its I/O as activities."""
    in_workflow = {"execute_in": "workflow"}
    # add_node: langgraph leaves `CachePolicy`'s type parameter unbound.
    g = StateGraph(SupportState)
    g.add_node("classify", classify, metadata=in_workflow)  # pyright: ignore[reportUnknownMemberType]
    g.add_node("retrieve", retrieve, metadata=in_workflow)  # pyright: ignore[reportUnknownMemberType]
    g.add_node("answer", answer, metadata=in_workflow)  # pyright: ignore[reportUnknownMemberType]
    g.add_node("verify", verify, metadata=in_workflow)  # pyright: ignore[reportUnknownMemberType]
    g.add_node("check", check, metadata=in_workflow)  # pyright: ignore[reportUnknownMemberType]
    g.add_node("review", review, metadata=in_workflow)  # pyright: ignore[reportUnknownMemberType]
    g.add_node("finalize", finalize, metadata=in_workflow)  # pyright: ignore[reportUnknownMemberType]
    g.add_edge(START, "classify")
    g.add_edge("classify", "retrieve")
    g.add_edge("retrieve", "answer")
    g.add_edge("answer", "verify")
    g.add_edge("verify", "check")
    g.add_conditional_edges("check", _after_check, ["review", "finalize"])
    g.add_edge("review", "finalize")
    g.add_edge("finalize", END)
    return g
