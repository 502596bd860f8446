"""Waiting on a run of the in-process worker through the typed client."""

import asyncio

from keel.run_client import RunClient
from keel.schemas.runs import RunState


async def awaiting_review(runs: RunClient, run_id: str) -> RunState:
    """The run's state once it asks for a review (30 s at the most)."""
    for _ in range(300):
        state = await runs.state(run_id)
        if state.status == "awaiting_review":
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} never asked for a review")
