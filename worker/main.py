"""The worker process: every workflow and activity of Keel on one task queue."""

import asyncio
import logging

from temporalio.langgraph import LangGraphPlugin
from temporalio.worker import Worker

from keel.db import create_engine, init_db, session_factory
from keel.settings import Settings
from tools.journal import StepJournal
from tools.reviews import ReviewQueue
from worker.agents import build_graphs
from worker.plugin import KeelPlugin
from worker.temporal import connect, ensure_search_attributes

__all__ = ["run_worker"]

log = logging.getLogger("keel.worker")


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run a worker until `stop` is set (or forever)."""
    engine = create_engine(settings.sql_url)
    await init_db(engine)
    sessions = session_factory(engine)
    queue = ReviewQueue(sessions)
    plugin = KeelPlugin(activities=[queue.open, queue.close], interceptors=[StepJournal(sessions)])
    client = await connect(settings, plugin)
    await ensure_search_attributes(client)
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        plugins=[LangGraphPlugin(graphs=build_graphs())],
    )
    log.info("worker polling task queue %r on %s", settings.task_queue, settings.temporal_address)
    try:
        async with worker:
            await (stop.wait() if stop else asyncio.Event().wait())
    finally:
        await engine.dispose()
