"""`keel.run_client.RunClient` on a real dev server, with Keel's worker in this process."""

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError

from keel.admission import admit
from keel.run_client import RunClient
from keel.schemas.reviews import ClaimInput, DecisionInput, ReleaseInput
from keel.search_attributes import KEEL_AGENT, KEEL_SUBMITTER
from keel.settings import Settings
from keel.temporal.connection import connect
from tests.conftest import CONFIDENT, UNSURE
from tests.workflows.waiting import awaiting_review


@pytest.fixture
async def runs(settings: Settings) -> RunClient:
    return RunClient(await connect(settings))


async def test_a_run_starts_once_per_idempotency_key(runs: RunClient, settings: Settings):
    key = uuid.uuid4().hex
    admission = admit(settings, "support", CONFIDENT, idempotency_key=key, submitter="key-1")
    first = await runs.start(admission, settings.task_queue)
    assert (first.run_id, first.started, first.same_request) == (admission.run_id, True, True)
    again = await runs.start(
        admit(settings, "support", CONFIDENT, idempotency_key=key, submitter="key-1"),
        settings.task_queue,
    )
    assert (again.run_id, again.started, again.same_request) == (admission.run_id, False, True)
    other = admit(settings, "support", UNSURE, idempotency_key=key, submitter="key-1")
    refused = await runs.start(other, settings.task_queue)
    assert (refused.started, refused.same_request) == (False, False)

    result = await runs.result(admission.run_id)
    assert result.status == "completed" and result.outcome.answer
    description = await runs.describe(admission.run_id)
    assert description is not None
    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert description.typed_search_attributes.get(KEEL_AGENT) == "support"
    assert description.typed_search_attributes.get(KEEL_SUBMITTER) == "key-1"
    assert await runs.describe(f"run-{uuid.uuid4().hex}") is None


async def test_a_review_is_claimed_released_and_decided(runs: RunClient, settings: Settings):
    admission = admit(settings, "support", UNSURE)
    await runs.start(admission, settings.task_queue)
    run_id = admission.run_id
    pending = (await awaiting_review(runs, run_id)).pending_review
    assert pending is not None and pending.run_id == run_id

    review = pending.review_id
    claim = await runs.claim(run_id, ClaimInput(review_id=review, claimant="ana", lease_s=60))
    assert claim.claimant == "ana" and claim.expires_at > pending.opened_at
    held = (await runs.state(run_id)).pending_review
    assert held is not None and held.claim == claim
    foreign = DecisionInput(
        review_id=review, action="approve", reviewer="bo", action_hash=pending.action_hash
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:  # not bo's to decide
        await runs.decide(run_id, foreign)
    assert "claimed by ana" in str(refused.value.cause)
    await runs.release(run_id, ReleaseInput(review_id=review, claimant="ana"))
    released = (await runs.state(run_id)).pending_review
    assert released is not None and released.claim is None

    decision = DecisionInput(
        review_id=review, action="edit", answer="Which device?", action_hash=pending.action_hash
    )
    await runs.decide(run_id, decision)
    result = await runs.result(run_id)
    assert (result.status, result.outcome.answer, result.outcome.reviewed) == (
        "completed",
        "Which device?",
        True,
    )


async def test_a_run_is_cancelled_or_terminated(runs: RunClient, settings: Settings):
    cancelled, terminated = (admit(settings, "support", UNSURE) for _ in range(2))
    for admission in (cancelled, terminated):
        await runs.start(admission, settings.task_queue)
        await awaiting_review(runs, admission.run_id)
    await runs.cancel(cancelled.run_id)
    await runs.terminate(terminated.run_id, "seen enough")
    for admission, status in (
        (cancelled, WorkflowExecutionStatus.CANCELED),
        (terminated, WorkflowExecutionStatus.TERMINATED),
    ):
        for _ in range(100):
            description = await runs.describe(admission.run_id)
            assert description is not None
            if description.status == status:
                break
            await asyncio.sleep(0.1)
        assert description.status == status
