"""`keel calibrate --fit`: the table it prints is configuration Keel accepts as it is."""

import tomllib

from cli.calibrate import Calibration, _fitted_table
from keel.calibration import score
from keel.risk_control import control_risk
from keel.schemas.calibration import Observation
from keel.schemas.policy import EscalationSettings
from keel.schemas.scoring import ScoreModel

MODEL = ScoreModel(
    intercept=-1.39, weights={"top_score": 0.1364, "margin": 0.271, "confidence": 0.0}, fitted_on=59
)


def _calibration(observations: list[Observation]) -> Calibration:
    return Calibration(
        source="labelled set",
        labels=len(observations),
        at_threshold=score(observations, 0.6),
        risk=control_risk(observations, 0.05, 0.1),
        fitted=MODEL,
    )


def _config(printed: str) -> EscalationSettings:
    table = "\n".join(line.strip() for line in printed.splitlines() if line.startswith("    "))
    return EscalationSettings.model_validate(tomllib.loads(table)["escalation"])


def test_the_printed_table_is_the_fitted_model_and_the_certified_threshold() -> None:
    safe = [Observation(confidence=0.9, needed_person=False)] * 60
    printed = _fitted_table("support", _calibration(safe))
    own = _config(printed).agents["support"]
    assert own.score == MODEL
    assert own.threshold is not None and own.threshold == round(own.threshold, 3)


def test_with_nothing_certified_the_table_keeps_the_threshold_and_says_so() -> None:
    few = [Observation(confidence=0.9, needed_person=False)] * 10  # too few to certify
    printed = _fitted_table("support", _calibration(few))
    assert "no threshold is certified" in printed
    own = _config(printed).agents["support"]
    assert own.score == MODEL and own.threshold is None
