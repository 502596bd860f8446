"""`/v1/agents`: the catalog of agents a run can name."""

from fastapi import APIRouter

from keel.agents import agent_catalog
from keel.schemas.runs import AgentInfo, AgentList

__all__ = ["list_agents", "router"]

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
