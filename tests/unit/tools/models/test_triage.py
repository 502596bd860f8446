"""The local triage classifier: fitted on the support agent's examples, measured on TUNE."""

import json
import time
from pathlib import Path

import pytest

from keel.errors import KeelUserError
from keel.schemas.model import Message, ModelRequest
from tools.models.local import LocalProvider
from tools.models.triage import TriageClassifier, TriageModels
from workflows.agents.support.spec import SPEC, TRIAGE_ESCALATE, TRIAGE_LABELS

EXAMPLES = SPEC.triage_examples
assert EXAMPLES is not None
TUNE = [
    json.loads(line)
    for line in (Path(EXAMPLES).parent / "evals" / "tune.jsonl").read_text().splitlines()
]
ESCALATE = set(TRIAGE_ESCALATE)


@pytest.fixture(scope="module")
def classifier() -> TriageClassifier:
    return TriageClassifier.from_jsonl(EXAMPLES)


def _ask(question: str, **fields: object) -> ModelRequest:
    return ModelRequest(
        messages=[Message(role="user", content=question)], labels=list(TRIAGE_LABELS), **fields
    )


def test_fitting_takes_well_under_a_second_and_is_deterministic() -> None:
    # CPU time, not wall time: the machines running the suite are shared and busy.
    started = time.process_time()
    first = TriageClassifier.from_jsonl(EXAMPLES)
    assert time.process_time() - started < 1.0
    second = TriageClassifier.from_jsonl(EXAMPLES)
    for text in ("I was charged twice, refund one", "how do I export to PDF?"):
        assert first.probabilities(text) == second.probabilities(text)


def test_it_learns_its_own_examples(classifier: TriageClassifier) -> None:
    records = [json.loads(line) for line in EXAMPLES.read_text().splitlines()]
    right = sum(classifier.classify(r["text"], default="general")[0] == r["label"] for r in records)
    assert right / len(records) >= 0.95
    assert set(classifier.labels) == {"general", *TRIAGE_ESCALATE}


def test_general_only_when_at_least_half_sure(classifier: TriageClassifier) -> None:
    text = "Please move my subscription to my other email address, I can't do it myself"
    probabilities = classifier.probabilities(text)
    assert sum(probabilities.values()) == pytest.approx(1.0)
    label, confidence = classifier.classify(text, default="general")
    assert label == "account_specific" and confidence == probabilities[label]
    assert classifier.classify(text, default="general", min_default=0.0) == (
        "general",
        probabilities["general"],
    )


def test_on_the_tune_split_it_sends_what_needs_a_person_and_beats_keywords(
    classifier: TriageClassifier,
) -> None:
    keywords = LocalProvider()  # no classifier: the keyword rules

    def escalated(decide: object) -> tuple[int, int, int]:
        flags = [(r["category"], decide(r["question"]) in ESCALATE) for r in TUNE]  # type: ignore[operator]
        correct = sum(flag == (category in ESCALATE) for category, flag in flags)
        caught = sum(flag for category, flag in flags if category in ESCALATE)
        return correct, caught, sum(flag for category, flag in flags if category == "answerable")

    learnt = escalated(lambda q: classifier.classify(q, default="general")[0])
    keyword = escalated(lambda q: keywords.respond(_ask(q)).label)
    must = sum(r["category"] in ESCALATE for r in TUNE)
    answerable = sum(r["category"] == "answerable" for r in TUNE)
    assert learnt[1] / must >= 0.95  # recall on the must-escalate categories
    assert learnt[2] / answerable <= 0.2  # answerable questions sent to a person
    assert learnt[0] > keyword[0] and learnt[1] > keyword[1] and learnt[2] < keyword[2]


def test_the_local_provider_uses_the_named_classifier_for_its_labels() -> None:
    provider = LocalProvider(TriageModels({"support": EXAMPLES}))
    disputed = provider.respond(_ask("I was charged $90 twice, reverse one", classifier="support"))
    assert disputed.label == "charge_dispute" and 0.0 < (disputed.confidence or 0) <= 1.0
    assert provider.triage.get("support") is provider.triage.get("support")  # fitted once
    # Without the classifier's name, with an unknown one, or with other labels: keywords.
    plain = provider.respond(_ask("I was charged $90 twice, reverse one"))
    unknown = provider.respond(_ask("I was charged $90 twice, reverse one", classifier="nope"))
    assert plain.label == unknown.label == LocalProvider().respond(_ask("charged twice")).label
    other = ModelRequest(
        messages=[Message(role="user", content="refund my invoice")],
        labels=["billing: refund invoice", "other"],
        classifier="support",
    )
    assert provider.respond(other).label == "billing"


def test_examples_need_two_labels() -> None:
    with pytest.raises(KeelUserError):
        TriageClassifier.fit(["a b c", "a b d"], ["general", "general"])
