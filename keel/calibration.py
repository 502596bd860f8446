"""Escalation calibration: precision and recall of "ask a person", and a threshold to use.

A run escalates (the positive) when its confidence is below the threshold, or for a reason
no threshold changes (`Observation.forced`). Against labels saying which runs needed a
person, escalation precision is the share of escalated runs that needed one, and recall the
share of runs needing one that escalated.

Labels come from two places:

- **Reviewer verdicts.** A decided review is a label (`keel.labels`): *approve* says the
  proposed answer was right as it was, so the person was not needed; *edit* and *reject*
  say it was not fit to send, so the person was. Only reviews opened on confidence
  (`low_confidence`, `off_topic`) count; tool approvals, budgets and guards escalate by rule.
  Every such review escalated, so verdicts measure precision at the thresholds in force;
  the recall they give is among reviewed runs only (runs that never escalated have no
  verdict), which is what a lower threshold would still catch.
- **A labelled set** (`LabelledQuestion` per JSON line): each question is run and its
  escalation compared with `answerable` (an unanswerable question needs a person).

`suggest_threshold` picks the lowest threshold whose recall reaches a target: the lowest,
because a lower threshold escalates less and so keeps precision highest.
"""

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import ValidationError

from keel.admission import run_policy
from keel.errors import KeelUserError
from keel.schemas.calibration import LabelledQuestion, Observation, Scores
from keel.settings import Settings

__all__ = [
    "agent_threshold",
    "calibration_settings",
    "load_labelled",
    "render_scores",
    "score",
    "suggest_threshold",
]

# Long enough that no observed run expires; calibration ends a run once it escalates.
_REVIEW_TIMEOUT_S = 3_600.0


def calibration_settings(settings: Settings) -> Settings:
    """`settings` for calibration runs: reviews that wait long enough to be observed."""
    return settings.model_copy(update={"review_timeout_s": _REVIEW_TIMEOUT_S})


def agent_threshold(settings: Settings, agent: str) -> float:
    """The confidence threshold `agent` runs with under `settings`."""
    return run_policy(settings, agent).threshold


def load_labelled(path: Path) -> list[LabelledQuestion]:
    """Read a labelled set: one JSON object per line, blank lines skipped.

    Raises:
        KeelUserError: The file is missing, or a line is not a `LabelledQuestion`.

    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise KeelUserError(f"cannot read the labelled set {path}: {err.strerror}") from err
    questions: list[LabelledQuestion] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            questions.append(LabelledQuestion.model_validate(json.loads(line)))
        except (ValueError, ValidationError) as err:
            raise KeelUserError(f"{path}:{number}: not a labelled question: {err}") from err
    if not questions:
        raise KeelUserError(f"the labelled set {path} is empty")
    return questions


def score(observations: Iterable[Observation], threshold: float) -> Scores:
    """Count escalations at `threshold` against the labels."""
    tp = fp = fn = tn = 0
    for o in observations:
        escalated = o.escalates(threshold)
        if escalated and o.needed_person:
            tp += 1
        elif escalated:
            fp += 1
        elif o.needed_person:
            fn += 1
        else:
            tn += 1
    return Scores(
        threshold=threshold,
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        true_negatives=tn,
    )


def suggest_threshold(observations: Sequence[Observation], target_recall: float) -> Scores | None:
    """The lowest threshold whose recall reaches `target_recall`, scored; None without labels.

    Candidates are 0 and the midpoints between neighbouring confidences (and just above
    the highest), so each candidate separates the observations differently.
    """
    if not any(o.needed_person for o in observations):
        return None
    levels = sorted({o.confidence for o in observations})
    candidates = [0.0]
    candidates += [round((a + b) / 2, 4) for a, b in zip(levels, levels[1:], strict=False)]
    candidates.append(min(1.0, round(levels[-1] + 0.001, 4)))
    for threshold in candidates:
        scores = score(observations, threshold)
        if scores.recall is not None and scores.recall >= target_recall:
            return scores
    return score(observations, candidates[-1])


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def render_scores(label: str, scores: Scores) -> str:
    """One line: threshold, precision, recall and the confusion counts."""
    return (
        f"{label:<28} threshold {scores.threshold:.3f}  precision {_ratio(scores.precision)}  "
        f"recall {_ratio(scores.recall)}  (escalated {scores.true_positives} needed + "
        f"{scores.false_positives} not needed; missed {scores.false_negatives}; "
        f"passed {scores.true_negatives})"
    )
