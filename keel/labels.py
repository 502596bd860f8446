"""Reviewer verdicts kept as labels, for calibrating when an agent asks a person.

Labels come from two strata of runs, and each carries the weight that makes the two
together stand for every run (`Observation.weight`, used by `keel.risk_control`):

- **Escalations** (`source` `escalation`, weight 1). A review decided by a person becomes
  one `LabelRow`: *approve* means the proposed answer was fit to send as it was, so the
  escalation was not needed (`needed_person` False); *edit* and *reject* mean it was not,
  so it was (`needed_person` True). Every escalated run is reviewed, so its verdict is a
  certain observation of the escalated stratum: it was labelled with probability 1. A
  review that the deadline decided, or that was cancelled, has no verdict and no label.
  Labels are written with the decision (the same activity, idempotent on the review id).
- **Audits** (`source` `audit`, weight 1/p). An answer sent without review is sampled with
  probability p into the audit queue; a person grades it *correct* (`needed_person`
  False) or *wrong* (True) after the fact. Without these, labels would only ever come from
  runs that escalated, and a threshold learnt from them would never see the answers it
  let through.

`keel calibrate` reads both.
"""

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.schemas.calibration import Observation
from keel.tables import LabelRow, ReviewRow

__all__ = [
    "CONFIDENCE_REASONS",
    "VERDICTS",
    "agent_labels",
    "grade_label",
    "label_for",
    "observations",
    "record_label",
]

VERDICTS = {"approved": "approve", "edited": "edit", "rejected": "reject"}
"""Review statuses a person decided, and the verdict each is."""
CONFIDENCE_REASONS = frozenset({"low_confidence", "off_topic"})
"""Reasons a confidence threshold decides; other reviews escalate by rule, whatever it is."""


def label_for(row: ReviewRow) -> LabelRow | None:
    """The label a decided review gives, or None when no person decided it."""
    verdict = VERDICTS.get(row.status)
    if verdict is None or row.deadline_path is not None or row.decided_at is None:
        return None
    return _label(row, verdict, row.decided_at, needed_person=verdict != "approve")


def grade_label(row: ReviewRow) -> LabelRow:
    """The label a graded audit gives: weighted by 1 / its sampling probability.

    Raises:
        ValueError: The row is not a graded audit.

    """
    if row.kind != "audit" or row.grade is None or row.decided_at is None:
        raise ValueError(f"review {row.id} is not a graded audit")
    if row.sampling_rate is None or not 0 < row.sampling_rate <= 1:
        raise ValueError(f"audit {row.id} has no sampling probability")
    weight = 1.0 / row.sampling_rate
    return _label(
        row,
        row.grade,
        row.decided_at,
        needed_person=row.grade == "wrong",
        source="audit",
        weight=weight,
    )


def _label(
    row: ReviewRow,
    verdict: str,
    decided_at: datetime,
    *,
    needed_person: bool,
    source: str = "escalation",
    weight: float = 1.0,
) -> LabelRow:
    """A review's label: what the review says, and the verdict on it."""
    return LabelRow(
        review_id=row.id,
        run_id=row.run_id,
        agent=row.agent,
        reason=row.reason,
        confidence=row.confidence,
        threshold=row.threshold,
        verdict=verdict,
        needed_person=needed_person,
        reviewer=row.reviewer,
        decided_at=decided_at,
        source=source,
        weight=weight,
        signals=row.signals,
    )


async def record_label(session: AsyncSession, row: ReviewRow) -> None:
    """Keep a decided review's verdict as a label (once: a retry finds it there)."""
    label = label_for(row)
    if label is None or await session.get(LabelRow, label.review_id) is not None:
        return
    session.add(label)
    await session.commit()


async def agent_labels(session: AsyncSession, agent: str) -> list[LabelRow]:
    """Every label of `agent`, oldest first."""
    query = select(LabelRow).where(LabelRow.agent == agent).order_by(col(LabelRow.decided_at))
    return list(await session.exec(query))


def observations(labels: Sequence[LabelRow]) -> list[Observation]:
    """The labels a threshold decides, as weighted observations.

    A review with no confidence, or whose confidence was at or above the threshold it was
    opened with, escalated for another reason: it is `forced`. An audit was sent without
    review, so a threshold decides it: never forced, weighed by 1 / its sampling probability.
    """
    found: list[Observation] = []
    for label in labels:
        if label.source == "audit":
            confidence = label.confidence if label.confidence is not None else 0.0
            found.append(
                Observation(
                    confidence=confidence, needed_person=label.needed_person, weight=label.weight
                )
            )
            continue
        if label.reason not in CONFIDENCE_REASONS:
            continue
        confidence = label.confidence if label.confidence is not None else 0.0
        threshold = label.threshold if label.threshold is not None else 1.0
        forced = (
            label.reason != "low_confidence" or label.confidence is None or confidence >= threshold
        )
        found.append(
            Observation(
                confidence=confidence,
                needed_person=label.needed_person,
                forced=forced,
                weight=label.weight,
            )
        )
    return found
