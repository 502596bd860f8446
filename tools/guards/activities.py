"""The guard activity: screen texts for PII, policy terms and instructions to the model.

A text that reads like instructions to a model (`tools.retrieval.injection`, the rules
retrieval flags passages with) is a `suspected_injection`: a customer's message can carry
an injection as well as a retrieved passage can. Policy terms are the configured ones and
the run's own (`ScreenRequest.terms`, from its agent's policy).
"""

import asyncio
from functools import lru_cache

from temporalio import activity

from keel.schemas.guards import (
    GUARD_SCREEN,
    GuardFinding,
    GuardSettings,
    ScreenRequest,
    ScreenResult,
)
from keel.schemas.retrieval import SUSPECTED_INJECTION
from tools.guards.pii import PiiDetector
from tools.guards.terms import PolicyTerms
from tools.retrieval.injection import looks_like_injection

__all__ = ["Guards"]


class Guards:
    """`guard.screen` over a worker's configured guards."""

    def __init__(
        self, pii: PiiDetector | None, terms: PolicyTerms, *, injection: bool = True
    ) -> None:
        self._pii = pii
        self._terms = terms
        self._injection = injection

    @classmethod
    def from_settings(cls, settings: GuardSettings, pii: PiiDetector | None) -> "Guards":
        """The guards `settings` configure; `pii` is used only when PII screening is on."""
        return cls(
            pii if settings.pii else None,
            PolicyTerms(settings.policy_terms),
            injection=settings.injection,
        )

    @activity.defn(name=GUARD_SCREEN)
    async def screen(self, request: ScreenRequest) -> ScreenResult:
        """Every PII value and policy term in the request's texts (CPU work, in a thread)."""
        return await asyncio.to_thread(self._screen, request)

    def _screen(self, request: ScreenRequest) -> ScreenResult:
        findings: list[GuardFinding] = []
        own = _terms(tuple(request.terms))
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
            # A span both lists match is reported once, as the configured term.
            spans = {(s, e): t for t, s, e in [*own.find(item.text), *self._terms.find(item.text)]}
            findings += [
                GuardFinding(kind="policy_term", field=item.field, label=term, start=s, end=e)
                for (s, e), term in sorted(spans.items())
            ]
            if self._injection and looks_like_injection(item.text):
                findings.append(
                    GuardFinding(
                        kind="suspected_injection", field=item.field, label=SUSPECTED_INJECTION
                    )
                )
        return ScreenResult(findings=findings)


@lru_cache(maxsize=64)
def _terms(terms: tuple[str, ...]) -> PolicyTerms:
    """The compiled matcher of a run's own terms (few distinct lists: one per agent)."""
    return PolicyTerms(terms)
