"""The `assistant` agent as the API knows it: its spec and input model, none of its graph.

The graph (`workflows.agents.assistant.graph`) imports LangGraph; the API, which only
validates inputs and lists agents, loads this module alone.
"""

from pydantic import BaseModel, Field

from keel.agents import AgentSpec

__all__ = ["SPEC", "AssistantInput"]


class AssistantInput(BaseModel):
    """A request for the assistant."""

    message: str = Field(min_length=1, max_length=8_000, description="What the user asks.")
    max_steps: int = Field(
        default=6,
        ge=1,
        le=1_000,
        description="Model turns at most (a long loop continues as new as its history grows).",
    )


SPEC = AgentSpec(
    name="assistant",
    description=(
        "A general assistant that calls tools (search the help centre, calculate, fetch "
        "allowed web pages, open tickets after a person approves) until it can answer."
    ),
    input_model=AssistantInput,
    text_field="message",
    graph="workflows.agents.assistant.graph:build_graph",
    routes=("default",),
)
