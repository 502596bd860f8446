"""The SQL database: one async engine per process, tables created on start."""

import asyncio
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from keel import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

__all__ = ["create_engine", "init_db", "session_factory"]


def create_engine(url: str) -> AsyncEngine:
    """An engine for `url`; SQLite files get WAL and their folder is created."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets the API read while the worker writes.
            cursor = conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True)


async def init_db(engine: AsyncEngine) -> None:
    """Create missing tables (idempotent, also when the API and a worker start together)."""
    for attempt in range(5):
        try:
            async with engine.begin() as conn:
                await conn.run_sync(SQLModel.metadata.create_all)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            # Another process created a table between our check and our CREATE: check again.
            if attempt == 4:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions bound to `engine`."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
