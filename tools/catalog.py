"""The worker's tools: Keel's built-ins plus every installed package's, and their catalog.

The worker publishes the catalog to the `tools` table at start, so the API can list the
tools and check a reviewer's edited arguments against a tool's schema without importing
any tool.
"""

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.schemas.tools import ToolCatalog
from keel.tables import ToolRow
from tools.builtin import BUILTIN_TOOLS
from tools.registry import ToolRegistry

__all__ = ["publish_catalog", "tool_registry"]


def tool_registry() -> ToolRegistry:
    """Keel's built-in tools and those of the `keel.tools` entry points."""
    registry = ToolRegistry(BUILTIN_TOOLS)
    registry.register_entry_points()
    return registry


async def publish_catalog(sessions: async_sessionmaker[AsyncSession], catalog: ToolCatalog) -> None:
    """Write `catalog` to the `tools` table (each tool's row replaced)."""
    now = datetime.now(UTC)
    async with sessions() as session:
        for info in catalog.tools:
            row = await session.get(ToolRow, info.name)
            if row is None:
                row = ToolRow(name=info.name, info={}, published_at=now)
            row.info = info.model_dump(mode="json")
            row.published_at = now
            session.add(row)
        await session.commit()
