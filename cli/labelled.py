"""Run an agent on a labelled set and observe when it asks a person.

Used by `keel calibrate AGENT --labelled FILE` and by `python -m bench`. Each question is a
real run of `AgentWorkflow` on a real worker, with the agent's escalation policy as the API
would resolve it. A run that opens a review is observed (its reason and confidence) and then
terminated, so calibration never waits on a person; it runs on a throwaway stack, so no
queue a person works sees it.
"""

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.client import WorkflowHandle

from cli.devserver import DevServer
from keel.calibration import calibration_input
from keel.net import free_port
from keel.schemas.calibration import LabelledQuestion, Observation
from keel.schemas.runs import TERMINAL_STATUSES, RunInput, RunResult
from keel.settings import Settings
from worker.main import keel_worker
from workflows.agent import AgentWorkflow

__all__ = ["calibration_stack", "observe_labelled"]


@asynccontextmanager
async def calibration_stack(settings: Settings) -> AsyncIterator[Settings]:
    """A throwaway embedded stack: a dev server and a data directory of its own.

    The models, routes and escalation policy of `settings` are kept; its Temporal server and
    database are not touched.
    """
    with tempfile.TemporaryDirectory(prefix="keel-calibrate-") as tmp:
        root = Path(tmp)
        server = DevServer(
            db_file=root / "temporal.db",
            port=free_port(),
            ui_port=None,
            log_file=root / "temporal.log",
        )
        await server.start()
        try:
            yield settings.model_copy(
                update={
                    "temporal_address": server.address,
                    "data_dir": root,
                    "database_url": "",
                    "task_queue": f"calibrate-{uuid.uuid4().hex[:8]}",
                }
            )
        finally:
            await server.stop()


async def observe_labelled(
    settings: Settings,
    agent: str,
    questions: Sequence[LabelledQuestion],
    *,
    concurrency: int = 4,
) -> list[Observation]:
    """Run `agent` on every question (a worker of its own on `settings`) and observe each."""
    base = calibration_input(settings, agent, "")
    gate = asyncio.Semaphore(concurrency)
    async with keel_worker(settings) as worker:

        async def one(question: LabelledQuestion) -> Observation:
            async with gate:
                run_input = calibration_input(settings, agent, question.question)
                handle = await worker.client.start_workflow(
                    AgentWorkflow.run,
                    run_input,
                    id=f"calibrate-{uuid.uuid4().hex}",
                    task_queue=settings.task_queue,
                )
                confidence, forced, escalated = await _watch(handle, base)
            return Observation(
                confidence=confidence,
                needed_person=not question.answerable,
                forced=forced or (escalated and confidence >= base.review_threshold),
                split=question.split,
            )

        return list(await asyncio.gather(*(one(q) for q in questions)))


async def _watch(
    handle: WorkflowHandle[AgentWorkflow, RunResult], base: RunInput
) -> tuple[float, bool, bool]:
    """(confidence, forced, escalated) of one run; a run that opens a review is terminated."""
    while True:
        state = await handle.query(AgentWorkflow.state)
        review = state.pending_review
        # Once the queue row is written (`awaiting_review`), no activity of the run is in flight.
        if review is not None and state.status == "awaiting_review":
            await handle.terminate("calibration observed its escalation")
            confidence = review.confidence if review.confidence is not None else 0.0
            threshold = review.threshold if review.threshold is not None else base.review_threshold
            forced = review.reason != "low_confidence" or confidence >= threshold
            return confidence, forced, True
        if state.status in TERMINAL_STATUSES:
            result = await handle.result()
            return result.outcome.confidence, result.outcome.reviewed, result.outcome.reviewed
        await asyncio.sleep(0.1)
