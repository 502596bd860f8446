"""`/v1/agents`: the catalog of agents a run can name, and how well each answers unreviewed."""

from typing import Annotated

from fastapi import APIRouter

from api.auth import Principal, require
from api.deps import SessionDep, SettingsDep
from api.quality import agent_quality
from keel.agents import agent_catalog
from keel.errors import UnknownAgent
from keel.schemas.calibration import WrongSentEstimate
from keel.schemas.runs import AgentInfo, AgentList

__all__ = ["get_quality", "list_agents", "router"]

router = APIRouter(prefix="/v1/agents", tags=["agents"])


@router.get("")
async def list_agents() -> AgentList:
    """Every agent, with its input schema."""
    return AgentList(
        agents=[
            AgentInfo(
                name=spec.name,
                description=spec.description,
                text_field=spec.text_field,
                input_schema=spec.input_model.model_json_schema(),
            )
            for spec in agent_catalog().values()
        ]
    )


@router.get("/{agent}/quality")
async def get_quality(
    agent: str,
    session: SessionDep,
    settings: SettingsDep,
    _: Annotated[Principal, require("reviewer", "operator")],
) -> WrongSentEstimate:
    """How often an answer `agent` sent without review was wrong, from graded audits."""
    if agent not in agent_catalog():
        raise UnknownAgent(f"no agent {agent!r}; agents: {', '.join(sorted(agent_catalog()))}")
    return await agent_quality(session, settings, agent)
