"""The FastAPI application: runs, reviews and agents under `/v1`; the codec server at `/codec`."""

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from api.auth import AuthState, require, v1_guard
from api.cors import install_cors
from api.limits import BodyLimits
from api.problems import PROBLEM_RESPONSES, install_problem_handlers
from api.quality import publish_all
from api.routes import agents, collections, keys, reviews, runs, tools, usage
from api.routes.codec import install_codec_server
from api.web.pages import install_pages
from keel.audit import AuditLog
from keel.audit_checkpoint import Checkpoints
from keel.db import Database, create_engine, init_db
from keel.encryption import EncryptionCodec, keyring
from keel.settings import Settings
from keel.temporal.connection import connect

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API, configured by `settings` (read from the environment when omitted)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None]:
        database = Database(create_engine(settings.sql_url))
        await init_db(database.engine)
        app.state.settings = settings
        app.state.db = database
        app.state.sessions = database.sessions
        app.state.audit = AuditLog(database, Checkpoints.from_settings(settings))
        app.state.auth = AuthState(settings)
        app.state.temporal = await connect(settings)
        keys = keyring(settings)
        app.state.codec = None if keys is None else EncryptionCodec(keys)
        async with database.sessions() as session:
            await publish_all(session, settings)
        try:
            yield
        finally:
            await database.dispose()

    app = FastAPI(
        title="Keel",
        version="0.1.0",
        description="Start agent runs, follow them, and decide their reviews.",
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
        # Every route under /v1/ authenticates (api/auth.py), including routes added later.
        dependencies=[Depends(v1_guard)],
    )
    install_problem_handlers(app)
    app.add_middleware(BodyLimits, max_bytes=settings.api_max_body_bytes)
    install_cors(app, settings.cors_origins)  # outermost: refusals get CORS headers too
    app.include_router(runs.router)
    app.include_router(reviews.router)
    app.include_router(agents.router)
    app.include_router(tools.router)
    app.include_router(keys.router)
    app.include_router(collections.router)
    app.include_router(usage.router)
    install_pages(app)
    install_codec_server(app, settings)

    # Request spans (the root of a run's trace when a run starts here) and HTTP metrics.
    FastAPIInstrumentor.instrument_app(app, excluded_urls="/healthz,/metrics")

    # An operator's (or admin's) key whenever keys are required; open mode answers on loopback.
    @app.get("/metrics", include_in_schema=False, dependencies=[require("operator")])
    async def metrics() -> Response:
        """Prometheus exposition of this process's OpenTelemetry metrics."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    return app
