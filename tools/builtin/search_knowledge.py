"""`search_knowledge`: the help-centre passages that best match a query."""

from datetime import timedelta

from pydantic import BaseModel, Field

from keel.errors import KeelUserError
from keel.schemas.retrieval import Passage, SearchQuery
from tools.builtin.resources import Resources
from tools.registry import ToolContext, tool
from tools.retrieval.builtin import QUILLPAD

__all__ = ["SearchKnowledgeArgs", "SearchKnowledgeResult", "search_knowledge"]


class SearchKnowledgeArgs(BaseModel):
    """What to look for."""

    query: str = Field(min_length=1, max_length=500, description="Words the passages contain.")
    k: int = Field(default=4, ge=1, le=10, description="The most passages to return.")


class SearchKnowledgeResult(BaseModel):
    """The matching passages, best first; empty when nothing matches."""

    passages: list[Passage]


@tool(idempotent=True, timeout=timedelta(seconds=10))
async def search_knowledge(
    args: SearchKnowledgeArgs, context: ToolContext
) -> SearchKnowledgeResult:
    """Search the help-centre knowledge base and return the best-matching passages.

    Each passage has an `id` to cite, a `title` (article and section) and its `text`.
    An empty list means no passage shares a word with the query: try other words.
    """
    retrieval = Resources.of(context).retrieval
    if retrieval is None:
        raise KeelUserError("`search_knowledge` needs `Resources.retrieval`: none was given")
    found = await retrieval.search(SearchQuery(collection=QUILLPAD, query=args.query, k=args.k))
    return SearchKnowledgeResult(passages=found.passages)
