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

from pydantic import ValidationError

from cli.devserver import DevServer
from keel.admission import admit, run_policy
from keel.calibration import calibration_settings
from keel.errors import KeelUserError
from keel.net import free_port
from keel.run_client import RunClient
from keel.schemas.calibration import LabelledQuestion, Observation
from keel.schemas.runs import TERMINAL_STATUSES, Admission
from keel.settings import Settings
from worker.main import keel_worker

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
    """Run `agent` on every question (a worker of its own on `settings`) and observe each.

    Raises:
        KeelUserError: `agent` is not installed, or a question is not an input it takes.

    """
    threshold = run_policy(settings, agent).threshold
    admissions = [_admission(settings, agent, question) for question in questions]
    gate = asyncio.Semaphore(concurrency)
    async with keel_worker(settings) as worker:
        runs = RunClient(worker.client)

        async def one(question: LabelledQuestion, admission: Admission) -> Observation:
            async with gate:
                await runs.start(admission, settings.task_queue)
                confidence, forced, escalated = await _watch(runs, admission.run_id, threshold)
            return Observation(
                confidence=confidence,
                needed_person=not question.answerable,
                forced=forced or (escalated and confidence >= threshold),
                split=question.split,
            )

        return list(await asyncio.gather(*map(one, questions, admissions)))


def _admission(settings: Settings, agent: str, question: LabelledQuestion) -> Admission:
    """A run of `agent` on `question`, admitted as the API would, with reviews that wait."""
    try:
        return admit(calibration_settings(settings), agent, question.question)
    except ValidationError as err:
        raise KeelUserError(f"{agent} does not take {question.question!r}: {err}") from err


async def _watch(runs: RunClient, run_id: str, threshold: float) -> tuple[float, bool, bool]:
    """(confidence, forced, escalated) of one run; a run that opens a review is terminated."""
    while True:
        state = await runs.state(run_id)
        review = state.pending_review
        # Once the queue row is written (`awaiting_review`), no activity of the run is in flight.
        if review is not None and state.status == "awaiting_review":
            await runs.terminate(run_id, "calibration observed its escalation")
            confidence = review.confidence if review.confidence is not None else 0.0
            own = review.threshold if review.threshold is not None else threshold
            forced = review.reason != "low_confidence" or confidence >= own
            return confidence, forced, True
        if state.status in TERMINAL_STATUSES:
            result = await runs.result(run_id)
            return result.outcome.confidence, result.outcome.reviewed, result.outcome.reviewed
        await asyncio.sleep(0.1)
