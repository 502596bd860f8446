"""The agent catalog: every agent Keel can run, discovered through the `keel.agents` entry points.

An agent is described by an `AgentSpec` (name, description, input model) and built by the
worker from the spec's `graph` factory, so the API can validate inputs without importing
any of the agent's graph code: the entry point names a spec in a module that imports none
of it (`workflows/agents/support/spec.py` beside its `graph.py`), so LangGraph stays out of the
API's process.
"""

from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

from pydantic import BaseModel

from keel.errors import KeelUserError

__all__ = ["AgentSpec", "agent_catalog"]


@dataclass(frozen=True)
class AgentSpec:
    """What the API and the worker need to know about one agent."""

    name: str
    """The agent's name: the REST `agent` field and the LangGraph graph name."""
    description: str
    """One paragraph shown by `GET /v1/agents`."""
    input_model: type[BaseModel]
    """The input schema; `POST /v1/runs` validates `input` against it."""
    text_field: str
    """The input field a plain string input fills."""
    graph: str
    """Import path `module:function` of a zero-argument factory returning the StateGraph."""
    routes: tuple[str, ...] = ()
    """Model routes the agent calls; the worker refuses to start when one is not configured."""
    triage_examples: Path | None = None
    """Labelled messages (JSON lines of `text` and `label`) the keyless `local` model fits
    this agent's triage classifier on; the classifier is named after the agent."""
    triage_escalate: tuple[str, ...] = ()
    """Triage labels that go to a person whatever the answer's confidence, unless
    `[escalation]` configures the agent's own list."""
    policy_terms: tuple[str, ...] = ()
    """Words or phrases in a run of this agent that send it to a person, unless
    `[escalation]` configures the agent's own list."""


@cache
def agent_catalog() -> dict[str, AgentSpec]:
    """Every installed agent, by name."""
    catalog: dict[str, AgentSpec] = {}
    for entry in entry_points(group="keel.agents"):
        spec = entry.load()
        if not isinstance(spec, AgentSpec):
            raise KeelUserError(f"entry point keel.agents:{entry.name} is not an AgentSpec")
        if spec.name != entry.name:
            raise KeelUserError(
                f"entry point keel.agents:{entry.name} names agent {spec.name!r}; they must match"
            )
        catalog[spec.name] = spec
    return catalog
