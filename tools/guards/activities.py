"""The guard activity: screen texts for PII and policy terms."""

import asyncio

from temporalio import activity

from keel.schemas.guards import (
    GUARD_SCREEN,
    GuardFinding,
    GuardSettings,
    ScreenRequest,
    ScreenResult,
)
from tools.guards.pii import PiiDetector
from tools.guards.terms import PolicyTerms

__all__ = ["Guards"]


class Guards:
    """`guard.screen` over a worker's configured guards."""

    def __init__(self, pii: PiiDetector | None, terms: PolicyTerms) -> None:
        self._pii = pii
        self._terms = terms

    @classmethod
    def from_settings(cls, settings: GuardSettings, pii: PiiDetector | None) -> "Guards":
        """The guards `settings` configure; `pii` is used only when PII screening is on."""
        return cls(pii if settings.pii else None, PolicyTerms(settings.policy_terms))

    @activity.defn(name=GUARD_SCREEN)
    async def screen(self, request: ScreenRequest) -> ScreenResult:
        """Every PII value and policy term in the request's texts (CPU work, in a thread)."""
        return await asyncio.to_thread(self._screen, request)

    def _screen(self, request: ScreenRequest) -> ScreenResult:
        findings: list[GuardFinding] = []
        for item in request.texts:
            if self._pii is not None:
                findings += [
                    GuardFinding(
                        kind="pii",
                        field=item.field,
                        label=hit.entity,
                        start=hit.start,
                        end=hit.end,
                        score=round(hit.score, 4),
                    )
                    for hit in self._pii.find(item.text)
                ]
            findings += [
                GuardFinding(kind="policy_term", field=item.field, label=term, start=s, end=e)
                for term, s, e in self._terms.find(item.text)
            ]
        return ScreenResult(findings=findings)
