"""The support graph's `verify` node in real runs: the keyless local verifier, and a judge
route to a scripted OpenAI-protocol judge (a malformed reply falls back to `local`)."""

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cli.devserver import DevServer
from keel.admission import admit
from keel.run_client import RunClient
from keel.schemas.policy import EscalationSettings
from keel.schemas.reviews import PendingReview
from keel.schemas.routing import Deployment, Route
from keel.settings import Settings
from keel.temporal.connection import connect
from keel.testing.replies import Reply
from keel.testing.server import WireServer
from tests.replays import assert_runs_replay
from tests.workflows.waiting import awaiting_review
from worker.main import keel_worker

QUESTION = "Can I make a payment with PayPal?"
PAYPAL = (
    "We accept Visa, Mastercard and American Express cards, and PayPal; Business workspaces "
    "with 20 or more seats can also pay annual invoices by bank transfer."
)
"""What the local answerer's draft comes down to: its two other sentences are about retries."""
KEY_ENV = "KEEL_TEST_JUDGE_KEY"


@pytest.fixture(scope="module")
def server() -> Iterator[WireServer]:
    with WireServer() as running:
        yield running


async def _runs(settings: Settings) -> RunClient:
    return RunClient(await connect(settings))


def _settings(temporal: DevServer, tmp_path: Path, **fields: object) -> Settings:
    return Settings.model_validate(
        {
            "temporal_address": temporal.address,
            "data_dir": tmp_path,
            "task_queue": f"verify-{uuid.uuid4().hex[:8]}",
            "worker_max_cached_workflows": 0,
        }
        | fields
    )


@pytest.fixture
async def local(temporal: DevServer, tmp_path: Path) -> AsyncIterator[Settings]:
    """A worker whose judge route is the default: the keyless local verifier."""
    own = _settings(temporal, tmp_path)
    async with keel_worker(own) as worker:
        yield own
    await assert_runs_replay(own, worker.client)


@pytest.fixture
async def scripted(
    temporal: DevServer, tmp_path: Path, server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Settings]:
    """A worker whose judge route asks the wire server's judge, then `local`."""
    server.reset()
    monkeypatch.setenv(KEY_ENV, "sk-test-judge")
    judge = Deployment(
        provider="openai",
        model="gpt-4o-mini",
        base_url=server.openai_base_url,
        api_key_env=KEY_ENV,
        max_attempts=1,
        timeout_s=5.0,
    )
    own = _settings(
        temporal,
        tmp_path,
        deployments={"judge-oai": judge},
        routes={"judge": Route(strategy="fallback", candidates=["judge-oai", "local"])},
    )
    async with keel_worker(own) as worker:
        yield own
    await assert_runs_replay(own, worker.client)


async def _pending(runs: RunClient, run_id: str) -> PendingReview:
    review = (await awaiting_review(runs, run_id)).pending_review
    assert review is not None
    return review


async def test_the_local_verifier_trims_padding_and_the_trimmed_answer_is_sent(
    local: Settings,
) -> None:
    runs = await _runs(local)
    admission = admit(local, "support", QUESTION)
    await runs.start(admission, local.task_queue)

    result = await runs.result(admission.run_id)

    assert result.status == "completed" and result.outcome.reviewed is False
    assert result.outcome.answer == PAYPAL
    assert [c.passage_id for c in result.outcome.citations] == [
        "plans-and-billing#how-billing-works"
    ]


async def test_a_question_the_passages_leave_open_goes_to_a_person_with_the_verdict(
    local: Settings,
) -> None:
    runs = await _runs(local)
    admission = admit(local, "support", "Does sync work with my Garmin watch?")
    await runs.start(admission, local.task_queue)

    review = await _pending(runs, admission.run_id)

    assert review.reason == "partial_answer"
    assert review.verification is not None and review.verification.verdict == "partial"
    assert review.verification.missing == "garmin, watch"


async def test_a_scripted_judge_decides_and_the_review_shows_its_verdict(
    scripted: Settings, server: WireServer
) -> None:
    server.push(
        Reply(text='{"verdict": "partial", "unsupported": [0, 1], "missing": "fees"}'),
        model="gpt-4o-mini",
    )
    runs = await _runs(scripted)
    admission = admit(scripted, "support", QUESTION)
    await runs.start(admission, scripted.task_queue)

    review = await _pending(runs, admission.run_id)

    assert review.reason == "partial_answer"
    assert review.proposed_answer == PAYPAL
    assert review.verification is not None
    assert (review.verification.verdict, review.verification.missing) == ("partial", "fees")
    assert len(review.verification.removed) == 2
    (sent,) = server.requests
    assert sent.model == "gpt-4o-mini"
    assert sent.body["response_format"]["json_schema"]["name"] == "Judgement"


async def test_a_malformed_judge_reply_falls_back_to_the_local_verifier(
    scripted: Settings, server: WireServer
) -> None:
    server.push(Reply(text="Looks fine to me!"), model="gpt-4o-mini")
    runs = await _runs(scripted)
    admission = admit(scripted, "support", QUESTION)
    await runs.start(admission, scripted.task_queue)

    result = await runs.result(admission.run_id)

    assert len(server.requests) == 1  # one attempt (max_attempts=1), then `local`
    assert result.status == "completed" and result.outcome.answer == PAYPAL


def _scored(settings: Settings, intercept: float) -> Settings:
    """`settings` whose support policy decides on a score model that is all intercept."""
    policy = {"agents": {"support": {"score": {"intercept": intercept, "weights": {}}}}}
    return settings.model_copy(update={"escalation": EscalationSettings.model_validate(policy)})


async def test_under_a_score_model_the_score_decides_and_is_the_confidence(
    local: Settings,
) -> None:
    runs = await _runs(local)
    # A score that trusts everything sends even what the verifier called partial...
    trusting = admit(_scored(local, 10.0), "support", "Does sync work with my Garmin watch?")
    await runs.start(trusting, local.task_queue)
    result = await runs.result(trusting.run_id)
    assert result.outcome.reviewed is False and result.outcome.confidence == 1.0
    signals = result.outcome.signals
    assert signals is not None and signals.verdict == "partial"
    assert signals.triage is not None and signals.top_score > 0 and 0 < signals.margin <= 1
    # ...one that trusts nothing sends nothing, the verdict being no reason to escalate.
    doubting = admit(_scored(local, -10.0), "support", QUESTION)
    await runs.start(doubting, local.task_queue)
    review = await _pending(runs, doubting.run_id)
    assert review.reason == "low_confidence" and review.confidence == 0.0
    assert review.signals is not None and review.signals.verdict == "answered"
    assert review.signals.confidence > 0.6  # the answer's own, which no longer decides
