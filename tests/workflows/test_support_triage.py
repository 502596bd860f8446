"""Triage in a `support` run: what must go to a person does, with the category shown.

An in-process worker on the suite's dev server, the keyless `local` model with the agent's
triage classifier, the worker's own help-centre index.
"""

from keel.admission import admit
from keel.run_client import RunClient
from keel.settings import Settings
from keel.temporal.connection import connect
from tests.conftest import CONFIDENT
from tests.workflows.waiting import awaiting_review

ACCOUNT_SPECIFIC = (
    "Please move my Plus subscription to my other email address, I can't do it myself"
)


async def test_an_account_specific_message_goes_to_a_person_and_a_general_one_is_answered(
    settings: Settings,
) -> None:
    runs = RunClient(await connect(settings))
    escalated, answered = (
        admit(settings, "support", ACCOUNT_SPECIFIC),
        admit(settings, "support", CONFIDENT),
    )
    for admission in (escalated, answered):
        await runs.start(admission, settings.task_queue)

    pending = (await awaiting_review(runs, escalated.run_id)).pending_review
    assert pending is not None
    assert (pending.reason, pending.triage) == ("needs_person", "account_specific")
    result = await runs.result(answered.run_id)
    assert result.status == "completed" and result.outcome.reviewed is False
    assert result.outcome.answer and result.outcome.citations
