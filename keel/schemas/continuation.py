"""Continue-as-new: when a run starts over on a fresh history, and what it carries along."""

from pydantic import BaseModel, Field

from keel.schemas.routing import Ledger

__all__ = ["Carried", "HistoryLimits"]


class HistoryLimits(BaseModel):
    """A run continues as new when Temporal suggests it, or when its history reaches these.

    Temporal warns at 10,240 events or 10 MB of history and fails a run at 51,200 / 50 MB.
    """

    max_events: int = Field(default=8_000, ge=10, description="Events in the run's history.")
    max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="Bytes of history.")


class Carried(BaseModel):
    """What a run hands to its continuation, so it goes on where it stopped."""

    checkpoint: str = Field(
        description="The agent graph's LangGraph checkpoint where it stopped (its own msgpack "
        "serialisation, base64): state values and the nodes that run next."
    )
    ledger: Ledger = Field(description="Every model call so far, and their cost.")
    budget_usd: float | None = Field(description="The budget, raised by any approval so far.")
    reviews: int = Field(ge=0, description="Reviews opened so far (all closed by now).")
    continuations: int = Field(ge=1, description="Which continuation of the run this is.")
