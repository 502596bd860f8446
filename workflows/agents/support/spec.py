"""The `support` agent as the API knows it: its spec and input model, none of its graph.

The graph (`workflows.agents.support.graph`) imports LangGraph; the API, which only
validates inputs and lists agents, loads this module alone.
"""

from pydantic import BaseModel, Field

from keel.agents import AgentSpec

__all__ = ["SPEC", "SupportInput"]


class SupportInput(BaseModel):
    """A customer's question."""

    question: str = Field(min_length=3, max_length=4_000, description="The customer's question.")


SPEC = AgentSpec(
    name="support",
    description=(
        "Answers a customer's question about Quillpad from the help centre, citing the "
        "articles it used; a question it cannot answer confidently goes to a reviewer."
    ),
    input_model=SupportInput,
    text_field="question",
    graph="workflows.agents.support.graph:build_graph",
    routes=("default",),
)
