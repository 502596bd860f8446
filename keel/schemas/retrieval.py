"""Retrieval models: passages of the knowledge base and search requests."""

from pydantic import BaseModel, Field

__all__ = ["Passage", "SearchRequest", "SearchResult"]


class Passage(BaseModel):
    """One retrievable chunk of a document, with the score of the search that found it."""

    id: str = Field(description="Stable passage id: '<document id>#<section slug>'.")
    document_id: str
    title: str = Field(description="Document title and section heading.")
    text: str
    score: float = 0.0


class SearchRequest(BaseModel):
    """A query against a collection."""

    query: str = Field(min_length=1)
    k: int = Field(default=4, ge=1, le=50)


class SearchResult(BaseModel):
    """The best passages for a query, best first."""

    passages: list[Passage]
