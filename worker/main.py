"""The worker process: every workflow and activity of Keel on one task queue."""

import asyncio
import logging
import sys
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from langgraph.graph import StateGraph
from temporalio.worker import Worker

from keel.audit import AuditLog
from keel.audit_checkpoint import Checkpoints
from keel.db import Database, create_engine, init_db
from keel.settings import Settings
from keel.temporal.connection import connect, ensure_search_attributes, keel_data_converter
from tools.builtin.resources import Resources
from tools.catalog import publish_catalog, tool_registry
from tools.guards.activities import Guards
from tools.guards.pii import PiiDetector
from tools.journal import StepJournal
from tools.models.activities import ModelActivities
from tools.retrieval.activities import RetrievalActivities
from tools.retrieval.builtin import ensure_quillpad
from tools.retrieval.service import RetrievalService
from tools.reviews import ReviewQueue
from worker.agents import build_graphs, graph_plugins, triage_models
from worker.heartbeats import Heartbeats
from workflows.policy import check_policy

__all__ = ["keel_worker", "run_worker"]

log = logging.getLogger("keel.worker")


def _ignore_plugin_eviction_noise(unraisable: "sys.UnraisableHookArgs") -> None:
    """Drop one known-harmless error of temporalio-langgraph 0.1, report everything else.

    When a worker evicts a cached run that is waiting (on shutdown, or when the cache is
    full), the plugin's interceptor calls `workflow.info()` in a `finally` that runs outside
    the workflow's event loop; Python reports that as an ignored exception with a
    traceback, although the run is unaffected.
    """
    frames = traceback.extract_tb(unraisable.exc_traceback)
    from_plugin = any(f.filename.endswith("temporalio/langgraph/_interceptor.py") for f in frames)
    if from_plugin and type(unraisable.exc_value).__name__ == "_NotInWorkflowEventLoopError":
        return
    sys.__unraisablehook__(unraisable)


@asynccontextmanager
async def keel_worker(
    settings: Settings,
    graphs: dict[str, StateGraph[Any, Any, Any, Any]] | None = None,
    *,
    journal: bool = True,
) -> AsyncIterator[Worker]:
    """A running worker: Keel's workflow and activities, and `graphs` (default: every agent's).

    Args:
        settings: Where Temporal and the database are, and the task queue.
        graphs: Agent graphs by name; the installed agents' graphs when omitted.
        journal: Write the step journal (`steps` table).
    """
    sys.unraisablehook = _ignore_plugin_eviction_noise
    # refuses unpriced deployments
    models = ModelActivities.from_settings(settings, triage=triage_models())
    for line in models.keyless_routes():
        log.warning("%s: its calls fail with MissingApiKey until it is set", line)
    graphs = build_graphs(settings) if graphs is None else graphs  # refuses unknown routes
    registry = tool_registry()  # refuses clashing names and broken schemas
    tool_names = [t.name for t in registry.catalog().tools]
    check_policy(settings.escalation, {n: g.nodes for n, g in graphs.items()}, tool_names)
    pii = PiiDetector.from_settings(settings.guards)  # refuses unknown entity types
    guards = Guards.from_settings(settings.guards, pii)
    if settings.guards.redact_external:
        models.pii = pii
    database = Database(create_engine(settings.sql_url))
    engine, sessions = database.engine, database.sessions
    await init_db(engine)
    await publish_catalog(sessions, registry.catalog())
    retrieval = await RetrievalService.open(settings, engine, sessions)
    await ensure_quillpad(retrieval)  # the help centre `support` and `search_knowledge` read
    audit = AuditLog(database, Checkpoints.from_settings(settings))
    queue = ReviewQueue(sessions, audit)
    step_journal = StepJournal(database)
    models.audit = audit
    keel_plugin, langgraph_plugin = graph_plugins(
        graphs,
        activities=[
            queue.open,
            queue.open_audit,
            queue.close,
            queue.claim,
            queue.move,
            guards.screen,
            models.plan,
            models.call,
            audit.append_activity,
            *RetrievalActivities(retrieval, sessions).all(),
            *registry.activities(Resources.from_settings(settings, sessions, retrieval), audit),
        ],
        interceptors=[Heartbeats(), *([step_journal] if journal else [])],
        data_converter=keel_data_converter(settings),
    )
    try:
        client = await connect(settings, keel_plugin)
        await ensure_search_attributes(client)
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            max_cached_workflows=settings.worker_max_cached_workflows,
            # A killed worker's runs move to another worker after this; see worker/heartbeats.py.
            sticky_queue_schedule_to_start_timeout=timedelta(
                seconds=settings.worker_sticky_timeout_s
            ),
            graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_s),
            plugins=[langgraph_plugin],
        )
        async with worker:
            log.info("worker polling %r on %s", settings.task_queue, settings.temporal_address)
            yield worker
        await step_journal.flush()
    finally:
        await models.aclose()
        await retrieval.aclose()
        await database.dispose()


async def run_worker(
    settings: Settings, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None
) -> None:
    """Run a worker until `stop` is set (or forever); `ready` is set once it polls."""
    async with keel_worker(settings):
        if ready is not None:
            ready.set()
        await (stop or asyncio.Event()).wait()
