"""The `support` agent's I/O node: retrieval from the help centre, as an activity."""

from typing import Any

from tools.retrieval.knowledge_base import KnowledgeBase
from workflows.support import SupportState

__all__ = ["SupportActivities"]


class SupportActivities:
    """Implements `workflows.support.SupportIO` on a knowledge base."""

    def __init__(self, kb: KnowledgeBase, *, k: int = 4) -> None:
        self._kb = kb
        self._k = k

    async def retrieve(self, state: dict[str, Any]) -> dict[str, Any]:
        """Find the help-centre passages closest to the question."""
        s = SupportState.model_validate(state)
        return {"passages": self._kb.search(s.question, k=self._k)}
