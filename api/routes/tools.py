"""`/v1/tools`: every tool the workers run, with its schema, approval flag and retry policy."""

from fastapi import APIRouter
from sqlmodel import col, select

from api.deps import SessionDep
from keel.schemas.tools import ToolInfo, ToolList
from keel.tables import ToolRow

__all__ = ["list_tools", "router"]

router = APIRouter(prefix="/v1/tools", tags=["tools"])


@router.get("")
async def list_tools(session: SessionDep) -> ToolList:
    """The catalog, as the workers published it at their last start."""
    rows = await session.exec(select(ToolRow).order_by(col(ToolRow.name)))
    return ToolList(tools=[ToolInfo.model_validate(row.info) for row in rows])
