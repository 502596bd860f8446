"""Audit sampling draws each run by its id: the share sampled is the rate, and a run always
draws the same."""

import uuid

import pytest

from keel.schemas.policy import EscalationSettings, RunPolicy
from workflows.audit_sampling import audit_draw

RUN_IDS = [f"support-{uuid.UUID(int=n)}" for n in range(40_000)]


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.2, 0.5])
def test_the_share_of_runs_sampled_is_the_audit_rate(rate: float) -> None:
    sampled = sum(audit_draw(run_id) < rate for run_id in RUN_IDS) / len(RUN_IDS)
    # Five standard deviations of a binomial share over 40,000 runs.
    assert sampled == pytest.approx(rate, abs=5 * (rate * (1 - rate) / len(RUN_IDS)) ** 0.5)


def test_a_run_always_draws_the_same_and_runs_draw_independently_of_their_neighbours() -> None:
    draws = [audit_draw(run_id) for run_id in RUN_IDS[:1000]]
    assert draws == [audit_draw(run_id) for run_id in RUN_IDS[:1000]]
    assert all(0.0 <= d < 1.0 for d in draws)
    # Consecutive ids (as idempotency keys make them) are not sampled together.
    pairs = sum(a < 0.5 and b < 0.5 for a, b in zip(draws, draws[1:], strict=False))
    assert pairs / (len(draws) - 1) == pytest.approx(0.25, abs=0.05)


def test_every_agent_is_audited_by_default_and_an_agent_can_opt_out() -> None:
    escalation = EscalationSettings.model_validate({"agents": {"assistant": {"audit_rate": 0}}})
    limits = {"threshold": 0.6, "timeout_s": 60.0, "claim_lease_s": 30.0}
    assert escalation.for_agent("support", **limits).audit_rate == 0.05
    assert escalation.for_agent("assistant", **limits).audit_rate == 0.0
    assert EscalationSettings(audit_rate=0.2).for_agent("support", **limits).audit_rate == 0.2
    # A run started before audit sampling carried no rate: it is never sampled.
    assert RunPolicy.model_validate({"threshold": 0.6}).audit_rate == 0.0
    with pytest.raises(ValueError, match="audit_rate"):
        EscalationSettings(audit_rate=1.5)
