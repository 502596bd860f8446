"""The `tally` agent as the API knows it: its spec and input model, none of its graph.

The graph (`keel_example_tools.tally`) imports LangGraph; the API, which only validates
inputs and lists agents, loads this module alone.
"""

from pydantic import BaseModel, Field

from keel.agents import AgentSpec

__all__ = ["SPEC", "TallyInput"]


class TallyInput(BaseModel):
    """How far to count."""

    count: int = Field(ge=1, le=100_000, description="Steps to take, one tool call each.")


SPEC = AgentSpec(
    name="tally",
    description="Counts to `count`, one calculator call per step: a long-running loop.",
    input_model=TallyInput,
    text_field="count",
    graph="keel_example_tools.tally:build_graph",
)
