"""The SQL database: one async engine per process, tables created on start.

`Database.run` runs a unit of work (plain SQLAlchemy Core on a sync connection) in one
transaction. On SQLite it runs whole on a thread of its own with a pysqlite connection:
one hand-over between threads, where the async driver hands over for every cursor call
(aiosqlite: a cursor, execute, fetch and close each cross threads). On other databases it
runs on the async engine's connection (`run_sync`), without threads. Hot paths (API key
look-ups, audit appends) take this way; the rest uses async sessions.

A database made by an earlier Keel gets what it lacks on start: missing tables, then
missing columns (added with their default, or empty) and their indexes. A column whose
`info` names a column to backfill from (`keel.tables.BACKFILL_FROM`) gets that column's
value in every row where it is empty: an API key made before principals is its own principal.
Nothing is ever dropped, and nothing but an empty backfilled column is changed.
"""

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import ColumnDefault, Connection, Engine, Table, event, inspect, literal
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

# Imported for what importing them does: it registers their tables on `SQLModel.metadata`.
from keel import retrieval_tables, tables  # noqa: F401  # pyright: ignore[reportUnusedImport]
from keel.tables import BACKFILL_FROM

__all__ = ["Database", "create_engine", "init_db", "session_factory"]

_T = TypeVar("_T")

_SQLITE_CONNECT = {"timeout": 30}


def create_engine(url: str) -> AsyncEngine:
    """An engine for `url`; SQLite files get WAL and their folder is created."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args=_SQLITE_CONNECT)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(conn: Any, _record: Any) -> None:
    # WAL lets the API read while the worker writes.
    cursor = conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """One process's database: async sessions, and units of work run in one trip.

    Args:
        engine: The async engine (`create_engine`); `dispose` closes it too.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)
        self._sqlite: Engine | None = None
        if engine.url.get_backend_name() == "sqlite":
            url = engine.url.set(drivername="sqlite")
            self._sqlite = sqlalchemy.create_engine(
                url, connect_args={**_SQLITE_CONNECT, "check_same_thread": False}
            )
            event.listen(self._sqlite, "connect", _sqlite_pragmas)

    async def run(self, work: Callable[[Connection], _T]) -> _T:
        """`work(connection)` in one transaction: committed when it returns, else rolled back."""
        if self._sqlite is not None:
            return await asyncio.to_thread(self._in_thread, self._sqlite, work)
        async with self.engine.begin() as conn:
            return await conn.run_sync(work)

    @staticmethod
    def _in_thread(engine: Engine, work: Callable[[Connection], _T]) -> _T:
        with engine.begin() as conn:
            return work(conn)

    async def dispose(self) -> None:
        """Close every connection."""
        await self.engine.dispose()
        if self._sqlite is not None:
            self._sqlite.dispose()


async def init_db(engine: AsyncEngine) -> None:
    """Create missing tables (idempotent, also when the API and a worker start together)."""
    for attempt in range(5):
        try:
            async with engine.begin() as conn:
                await conn.run_sync(SQLModel.metadata.create_all)
                await conn.run_sync(_add_missing_columns)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            # Another process created a table between our check and our CREATE: check again.
            if attempt == 4:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))


def _add_missing_columns(conn: Connection) -> None:
    inspector = inspect(conn)
    for table in SQLModel.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column for column in table.columns if column.name not in present]
        for column in missing:
            kind = column.type.compile(dialect=conn.dialect)
            default = column.default
            clause = ""
            if isinstance(default, ColumnDefault) and default.is_scalar:
                value = literal(default.arg, column.type)
                rendered = value.compile(
                    dialect=conn.dialect, compile_kwargs={"literal_binds": True}
                )
                clause = f" NOT NULL DEFAULT {rendered}"
            conn.exec_driver_sql(
                f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}{clause}'
            )
        if missing:
            _create_indexes(conn, table)
        _backfill(conn, table)


def _backfill(conn: Connection, table: Table) -> None:
    # On every start, not only when the column is added: on SQLite an ALTER commits at once,
    # so a process stopped between it and the copy would leave rows empty for good.
    for column in table.columns:
        source = column.info.get(BACKFILL_FROM)
        if source is not None:
            conn.execute(
                sqlalchemy.update(table)
                .where(column.is_(None))
                .values({column.name: table.c[source]})
            )


def _create_indexes(conn: Connection, table: Table) -> None:
    for index in table.indexes:
        index.create(conn, checkfirst=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions bound to `engine`."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
