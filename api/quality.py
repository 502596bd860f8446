"""An agent's wrong-sent rate as the API reports it, and as its metrics export it."""

from sqlmodel.ext.asyncio.session import AsyncSession

from keel.admission import run_policy
from keel.agents import agent_catalog
from keel.quality import agent_wrong_sent
from keel.schemas.calibration import WrongSentEstimate
from keel.settings import Settings
from keel.telemetry import record_wrong_sent

__all__ = ["agent_quality", "publish_all"]


async def agent_quality(session: AsyncSession, settings: Settings, agent: str) -> WrongSentEstimate:
    """`agent`'s wrong-sent rate from its graded audits; its gauges are set to it too."""
    known = agent in agent_catalog()
    rate = run_policy(settings, agent).audit_rate if known else None
    estimate = await agent_wrong_sent(session, agent, rate)
    record_wrong_sent(estimate)
    return estimate


async def publish_all(session: AsyncSession, settings: Settings) -> None:
    """Set every installed agent's gauges (at start: a fresh process exports them too)."""
    for agent in agent_catalog():
        await agent_quality(session, settings, agent)
