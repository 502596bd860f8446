"""The wrong-sent rate: how often an answer sent without review is wrong, from audit grades.

Audit samples are drawn from the answers sent without review (with probability p each,
`RunPolicy.audit_rate`), so the share of graded audits that were wrong estimates the share
of all such answers that were wrong. When p changed over time, each grade weighs 1/p: the
rate is Σw·wrong / Σw, and the Clopper–Pearson interval is taken on Kish's effective
sample size n' = ⌊(Σw)² / Σw²⌋ with round(rate·n') errors (exact with one p, an
approximation otherwise).
"""

import math
from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.risk_control import clopper_pearson_interval
from keel.schemas.calibration import WrongSentEstimate
from keel.tables import LabelRow

__all__ = ["CONFIDENCE", "agent_wrong_sent", "render_wrong_sent", "wrong_sent"]

CONFIDENCE = 0.95
"""The interval's confidence level."""
_EPS = 1e-9


def wrong_sent(
    agent: str,
    labels: Sequence[LabelRow],
    *,
    audit_rate: float | None = None,
    confidence: float = CONFIDENCE,
) -> WrongSentEstimate:
    """The wrong-sent rate of `agent` from its labels (only audit grades count)."""
    graded = [label for label in labels if label.source == "audit"]
    total = sum(label.weight for label in graded)
    squares = sum(label.weight**2 for label in graded)
    estimate = WrongSentEstimate(
        agent=agent,
        audit_rate=audit_rate,
        graded=len(graded),
        wrong=sum(label.needed_person for label in graded),
        effective_graded=round(total**2 / squares, 3) if graded else 0.0,
        confidence_level=confidence,
    )
    if not graded:
        return estimate
    rate = sum(label.weight for label in graded if label.needed_person) / total
    n = max(1, math.floor(total**2 / squares + _EPS))
    lower, upper = clopper_pearson_interval(round(rate * n), n, confidence)
    return estimate.model_copy(update={"wrong_sent_rate": rate, "lower": lower, "upper": upper})


async def agent_wrong_sent(
    session: AsyncSession, agent: str, audit_rate: float | None = None
) -> WrongSentEstimate:
    """`agent`'s wrong-sent rate from the audit grades in the database."""
    query = select(LabelRow).where(LabelRow.agent == agent, col(LabelRow.source) == "audit")
    return wrong_sent(agent, list(await session.exec(query)), audit_rate=audit_rate)


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def render_wrong_sent(estimate: WrongSentEstimate) -> str:
    """One line: the rate and its interval, or that no audit is graded yet."""
    sampling = "" if estimate.audit_rate is None else f" (sampling {_percent(estimate.audit_rate)})"
    if estimate.wrong_sent_rate is None:
        return f"{estimate.agent}: no audit graded yet{sampling}"
    assert estimate.lower is not None and estimate.upper is not None
    level = f"{100 * estimate.confidence_level:g} %"
    return (
        f"{estimate.agent}: wrong answers sent without review {_percent(estimate.wrong_sent_rate)}"
        f" ({level} interval {_percent(estimate.lower)}–{_percent(estimate.upper)}), "
        f"{estimate.wrong} wrong of {estimate.graded} graded audits{sampling}"
    )
