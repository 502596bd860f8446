"""The `support` agent's I/O nodes: classification, retrieval and the answer, as activities."""

from typing import Any

from temporalio import activity

from keel.schemas.model import Message, ModelRequest
from keel.schemas.reviews import Citation
from tools.retrieval.knowledge_base import KnowledgeBase
from tools.routing.client import ModelClient
from workflows.support import CATEGORIES, Draft, SupportState

__all__ = ["SupportActivities"]

_SYSTEM = (
    "You are Quillpad's support assistant. Answer only from the documents given, "
    "cite them, and say so when they do not contain the answer."
)


class SupportActivities:
    """Implements `workflows.support.SupportIO` on a knowledge base and a model client."""

    def __init__(self, kb: KnowledgeBase, model: ModelClient, *, k: int = 4) -> None:
        self._kb = kb
        self._model = model
        self._k = k

    async def classify(self, state: dict[str, Any]) -> dict[str, Any]:
        """Pick the question's category."""
        s = SupportState.model_validate(state)
        response = await self._model.complete(
            ModelRequest(
                messages=[Message(role="user", content=s.question)],
                labels=list(CATEGORIES),
                idempotency_key=_step_key("classify"),
            )
        )
        return {"category": response.label}

    async def retrieve(self, state: dict[str, Any]) -> dict[str, Any]:
        """Find the help-centre passages closest to the question."""
        s = SupportState.model_validate(state)
        return {"passages": self._kb.search(s.question, k=self._k)}

    async def answer(self, state: dict[str, Any]) -> dict[str, Any]:
        """Draft a grounded answer that cites the passages it used."""
        s = SupportState.model_validate(state)
        response = await self._model.complete(
            ModelRequest(
                messages=[
                    Message(role="system", content=_SYSTEM),
                    Message(role="user", content=s.question),
                ],
                documents=s.passages,
                idempotency_key=_step_key("answer"),
            )
        )
        titles = {p.id: p.title for p in s.passages}
        draft = Draft(
            answer=response.text,
            citations=[Citation(passage_id=c, title=titles[c]) for c in response.citations],
            confidence=response.confidence,
            provider=response.provider,
            model=response.model,
        )
        return {"draft": draft}


def _step_key(step: str) -> str:
    """Idempotency key of a side effect: the run's workflow id and the step."""
    return f"{activity.info().workflow_id}:{step}"
