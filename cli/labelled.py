"""Run an agent on a labelled set and observe when it asks a person.

Used by `keel calibrate AGENT --labelled FILE`, `keel eval` and `python -m bench`. Each
question is a real run of `AgentWorkflow` on a real worker, with the agent's escalation
policy as the API would resolve it. A run that opens a review is observed (its reason,
confidence, proposed answer and model calls) and then terminated, so calibration never waits
on a person; it runs on a throwaway stack, so no queue a person works sees it.
"""

import asyncio
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError

from cli.devserver import DevServer
from keel.admission import admit, run_policy
from keel.calibration import calibration_settings
from keel.errors import KeelUserError
from keel.net import free_port
from keel.run_client import RunClient
from keel.schemas.calibration import LabelledQuestion, LabelledRun, Observation
from keel.schemas.policy import SCORE_REASONS, RunPolicy
from keel.schemas.runs import TERMINAL_STATUSES, Admission
from keel.settings import Settings
from worker.main import keel_worker

__all__ = ["calibration_stack", "observe_labelled", "quiet_sdk", "run_labelled"]


def quiet_sdk() -> None:
    """Keep the SDK's warnings about the runs calibration ends out of a report."""
    quiet = LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=quiet)))
    logging.getLogger("temporalio").setLevel(logging.ERROR)


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
    """Each question's escalation decision and label (`run_labelled`)."""
    runs = await run_labelled(settings, agent, questions, concurrency=concurrency)
    return [run.observation() for run in runs]


async def run_labelled(
    settings: Settings,
    agent: str,
    questions: Sequence[LabelledQuestion],
    *,
    concurrency: int = 4,
) -> list[LabelledRun]:
    """Run `agent` on every question (a worker of its own on `settings`) and observe each.

    Raises:
        KeelUserError: `agent` is not installed, or a question is not an input it takes.

    """
    policy = run_policy(settings, agent)
    admissions = [_admission(settings, agent, question) for question in questions]
    gate = asyncio.Semaphore(concurrency)
    async with keel_worker(settings) as worker:
        runs = RunClient(worker.client)

        async def one(question: LabelledQuestion, admission: Admission) -> LabelledRun:
            async with gate:
                await runs.start(admission, settings.task_queue)
                return await _watch(runs, admission.run_id, question, policy)

        return list(await asyncio.gather(*map(one, questions, admissions)))


def _admission(settings: Settings, agent: str, question: LabelledQuestion) -> Admission:
    """A run of `agent` on `question`, admitted as the API would, with reviews that wait."""
    try:
        return admit(calibration_settings(settings), agent, question.question)
    except ValidationError as err:
        raise KeelUserError(f"{agent} does not take {question.question!r}: {err}") from err


_QUERY_RETRIES = 10
"""State queries of one run that may fail in a row before the observation gives up."""


async def _watch(
    runs: RunClient, run_id: str, question: LabelledQuestion, policy: RunPolicy
) -> LabelledRun:
    """What the run did with `question`; a run that opens a review is terminated.

    Its escalation was forced when no threshold would have sent its answer: it escalated
    for a reason other than its confidence (or, under a score model, the verdict the score
    weighs), or with a confidence the threshold did not object to.
    """
    threshold = policy.threshold
    scored = SCORE_REASONS if policy.score is not None else ("low_confidence",)
    misses = 0
    while True:
        try:
            state = await runs.state(run_id)
        except RPCError:
            # A query a busy server or worker could not answer in time: ask again, a few times.
            misses += 1
            if misses > _QUERY_RETRIES:
                raise
            await asyncio.sleep(0.5)
            continue
        review = state.pending_review
        # Once the queue row is written (`awaiting_review`), no activity of the run is in flight.
        if review is not None and state.status == "awaiting_review":
            await runs.terminate(run_id, "calibration observed its escalation")
            confidence = review.confidence if review.confidence is not None else 0.0
            own = review.threshold if review.threshold is not None else threshold
            forced = review.reason not in scored or confidence >= own
            return LabelledRun(
                question=question,
                confidence=confidence,
                escalated=True,
                forced=forced or confidence >= threshold,
                reason=review.reason,
                answer=review.proposed_answer,
                latency_s=await _latency(runs, run_id, review.opened_at),
                ledger=state.ledger,
                signals=review.signals,
            )
        if state.status in TERMINAL_STATUSES:
            result = await runs.result(run_id)
            return LabelledRun(
                question=question,
                confidence=result.outcome.confidence,
                escalated=result.outcome.reviewed,
                forced=result.outcome.reviewed,
                answer=result.outcome.answer,
                latency_s=await _latency(runs, run_id, None),
                ledger=result.ledger,
                signals=result.outcome.signals,
            )
        await asyncio.sleep(0.1)


async def _latency(runs: RunClient, run_id: str, until: datetime | None) -> float:
    """Seconds from the run's start to `until` (its close when None), as the server saw them."""
    described = await runs.describe(run_id)
    assert described is not None, f"run {run_id} vanished"
    end = until or described.close_time
    assert end is not None, f"run {run_id} has not ended"
    return max(0.0, (end - described.start_time).total_seconds())
