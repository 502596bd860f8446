"""Guards from workflow code: the run's escalation policy and its screening activity.

A graph node reaches the run's `Screening` through `run_context().screening`: the run's
`RunPolicy`, and `screen()`, which runs the guards (PII, policy terms, instructions to the
model) over some texts as the local activity `guard.screen`, with the policy's own terms. A
node re-runs from its start when it resumes after a review, so results are remembered per
step: a resumed node gets its findings back without screening twice.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.schemas.guards import (
        GUARD_SCREEN,
        GuardFinding,
        GuardText,
        ScreenRequest,
        ScreenResult,
    )
    from keel.schemas.policy import RunPolicy
    from workflows.activity_options import GUARD_SCREEN_OPTIONS

__all__ = ["Screening"]


class Screening:
    """One run's policy and guard results."""

    def __init__(self, policy: RunPolicy) -> None:
        self.policy = policy
        self._screened: dict[str, list[GuardFinding]] = {}

    async def screen(self, texts: list[GuardText], *, step: str) -> list[GuardFinding]:
        """What the guards find in `texts`; `step` names the screening within the run."""
        if not texts:
            return []
        if step not in self._screened:
            result = await workflow.execute_local_activity(
                GUARD_SCREEN,
                ScreenRequest(texts=texts, terms=self.policy.policy_terms),
                result_type=ScreenResult,
                **GUARD_SCREEN_OPTIONS.for_local_activity(
                    summary=f"guards: {', '.join(t.field for t in texts)}"
                ),
            )
            self._screened[step] = result.findings
        return self._screened[step]
