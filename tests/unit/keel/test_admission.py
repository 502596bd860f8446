"""`keel.admission.admit`: the one way a run's input is made, and `RunInput`'s legacy form."""

import hashlib
import json

import pytest
from pydantic import ValidationError

from keel.admission import admit, run_policy
from keel.errors import KeelUserError
from keel.schemas.policy import DEFAULT_QUEUE, EscalationSettings, RunPolicy
from keel.schemas.runs import RunInput
from keel.settings import Settings

pytestmark = pytest.mark.usefixtures("clean_env")


def _settings(**fields: object) -> Settings:
    escalation = EscalationSettings.model_validate(
        {
            "agents": {"support": {"threshold": 0.8, "queue": "billing", "budget_usd": 0.5}},
            "queues": {"billing": {"sla_s": 45, "on_expiry": "approve_if_low_risk"}},
        }
    )
    return Settings(escalation=escalation, **fields)  # type: ignore[arg-type]


def test_a_string_fills_the_agents_text_field_and_the_input_is_validated() -> None:
    admission = admit(Settings(), "support", "How do I reset my password?")
    assert admission.input.agent == "support"
    assert admission.input.input == {"question": "How do I reset my password?"}
    assert admission.summary == "support: How do I reset my password?"
    # An object input comes out as the input model dumps it (types coerced, as JSON).
    tally = admit(Settings(), "tally", {"count": "3"})
    assert tally.input.input == {"count": 3}
    assert tally.summary == "tally: 3"


def test_a_long_input_is_cut_in_the_summary() -> None:
    admission = admit(Settings(), "support", "x" * 200)
    assert admission.summary == "support: " + "x" * 79 + "…"


def test_an_input_the_agent_does_not_take_is_a_validation_error_within_the_input() -> None:
    with pytest.raises(ValidationError) as caught:
        admit(Settings(), "support", "hi")
    assert [e["loc"] for e in caught.value.errors()] == [("question",)]
    with pytest.raises(ValidationError) as caught:
        admit(Settings(), "tally", {"count": 0, "extra": 1})
    assert [e["loc"] for e in caught.value.errors()] == [("count",)]


def test_an_unknown_agent_is_a_user_error_naming_the_agents() -> None:
    with pytest.raises(KeelUserError, match=r"unknown agent 'nobody'; agents: assistant, "):
        admit(Settings(), "nobody", "hello there")
    with pytest.raises(KeelUserError, match="unknown agent 'nobody'"):
        run_policy(Settings(), "nobody")


def test_the_workflow_id_is_derived_from_the_idempotency_key_as_before() -> None:
    """Ids of runs started before keep answering repeated POSTs: the derivation is fixed."""
    open_mode = admit(Settings(), "support", "sync is stuck", idempotency_key="order-7")
    expected = hashlib.sha256(b"order-7").hexdigest()[:32]
    assert open_mode.run_id == f"run-{expected}"
    keyed = admit(
        Settings(), "support", "sync is stuck", idempotency_key="order-7", submitter="key-1"
    )
    scoped = hashlib.sha256(b"key-1\norder-7").hexdigest()[:32]
    assert keyed.run_id == f"run-{scoped}"
    assert keyed.input.submitted_by == "key-1"
    fresh = {admit(Settings(), "support", "sync is stuck").run_id for _ in range(3)}
    assert len(fresh) == 3 and all(len(i) == len("run-") + 32 for i in fresh)


def test_the_request_digest_tells_an_equal_request_from_a_different_one() -> None:
    first = admit(Settings(), "support", "sync is stuck", idempotency_key="k")
    again = admit(Settings(), "support", {"question": "sync is stuck"}, idempotency_key="k")
    other = admit(Settings(), "support", "sync is broken", idempotency_key="k")
    canonical = json.dumps(
        {"agent": "support", "input": {"question": "sync is stuck"}}, sort_keys=True
    )
    assert first.request_digest == hashlib.sha256(canonical.encode()).hexdigest()
    assert again.request_digest == first.request_digest != other.request_digest


def test_the_budget_and_history_limits_come_from_the_settings() -> None:
    settings = _settings(
        run_budget_usd=2.0,
        budget_action="fail",
        history_max_events=1234,
        history_max_bytes=567_890,
    )
    support = admit(settings, "support", "sync is stuck").input
    assert (support.budget_usd, support.budget_action) == (0.5, "fail")  # the agent's own
    assistant = admit(settings, "assistant", "hello there").input
    assert assistant.budget_usd == 2.0  # the global budget
    assert (assistant.history.max_events, assistant.history.max_bytes) == (1234, 567_890)
    assert admit(Settings(), "assistant", "hello there").input.budget_usd is None


def test_the_policy_is_the_agents_resolved_with_the_global_defaults() -> None:
    settings = _settings(review_threshold=0.3, review_timeout_s=90, review_claim_lease_s=20)
    support = admit(settings, "support", "sync is stuck").input.policy
    assert (support.threshold, support.queue, support.claim_lease_s) == (0.8, "billing", 20)
    assert support.queues["billing"].sla_s == 45
    assert support.queues[DEFAULT_QUEUE].sla_s == 90  # no SLA of its own: the review timeout
    assistant = admit(settings, "assistant", "hello there").input.policy
    assert (assistant.threshold, assistant.queue) == (0.3, DEFAULT_QUEUE)
    assert run_policy(settings, "support") == support


def test_a_legacy_input_without_a_policy_gets_its_threshold_and_timeout_as_the_policy() -> None:
    legacy = {"agent": "support", "input": {}, "review_threshold": 0.4, "review_timeout_s": 30}
    run = RunInput.model_validate(legacy)
    assert run.policy == RunPolicy.model_validate(
        {"threshold": 0.4, "queues": {DEFAULT_QUEUE: {"sla_s": 30}}}
    )
    assert "review_threshold" not in run.model_dump()
    # The same from JSON, as a replay reads it.
    assert RunInput.model_validate_json(json.dumps({**legacy, "policy": None})).policy == run.policy


def test_a_legacy_input_with_a_policy_keeps_it_whole() -> None:
    policy = {"threshold": 0.9, "queue": "billing", "queues": {"billing": {"sla_s": 5}}}
    legacy = {
        "agent": "support",
        "input": {},
        "review_threshold": 0.1,
        "review_timeout_s": 1,
        "policy": policy,
    }
    assert RunInput.model_validate(legacy).policy == RunPolicy.model_validate(policy)


def test_a_run_input_needs_a_policy() -> None:
    with pytest.raises(ValidationError) as caught:
        RunInput.model_validate({"agent": "support", "input": {}})
    assert [e["loc"] for e in caught.value.errors()] == [("policy",)]
