"""The FastAPI application: runs, reviews and agents under `/v1`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.limits import BodySizeLimit
from api.problems import install_problem_handlers
from api.routes import agents, reviews, runs, tools
from keel.db import create_engine, init_db, session_factory
from keel.settings import Settings
from worker.temporal import connect

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API, configured by `settings` (read from the environment when omitted)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.sql_url)
        await init_db(engine)
        app.state.settings = settings
        app.state.sessions = session_factory(engine)
        app.state.temporal = await connect(settings)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Keel",
        version="0.1.0",
        description="Start agent runs, follow them, and decide their reviews.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    app.include_router(runs.router)
    app.include_router(reviews.router)
    app.include_router(agents.router)
    app.include_router(tools.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    return app
