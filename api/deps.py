"""Request dependencies: settings, Temporal and run clients, database sessions, the audit log."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from keel.audit import AuditLog
from keel.run_client import RunClient
from keel.settings import Settings

__all__ = ["AuditDep", "RunClientDep", "SessionDep", "SettingsDep", "TemporalClientDep"]


# `async def`, though they do not wait: FastAPI runs a plain `def` dependency in a thread.
async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _temporal(request: Request) -> Client:
    return request.app.state.temporal


async def _runs(request: Request) -> RunClient:
    return RunClient(request.app.state.temporal)


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


async def _audit(request: Request) -> AuditLog:
    return request.app.state.audit


AuditDep = Annotated[AuditLog, Depends(_audit)]
SettingsDep = Annotated[Settings, Depends(_settings)]
TemporalClientDep = Annotated[Client, Depends(_temporal)]
RunClientDep = Annotated[RunClient, Depends(_runs)]
SessionDep = Annotated[AsyncSession, Depends(_session)]
