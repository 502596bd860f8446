"""The local verifier: what it keeps, what it trims, and its verdicts."""

import pytest

from keel.schemas.model import JudgeInput, Judgement, Message, ModelRequest
from keel.schemas.retrieval import Passage
from tools.models.local import LocalProvider
from tools.models.local_judge import judge

BILLING = Passage(
    id="billing#payment",
    document_id="billing",
    title="Plans and billing — Payment methods",
    text=(
        "We accept Visa, Mastercard and American Express cards, and PayPal. "
        "Business workspaces with 20 or more seats can also pay annual invoices by bank transfer."
    ),
)
UPGRADE = Passage(
    id="billing#upgrade",
    document_id="billing",
    title="Plans and billing — Upgrading",
    text="The upgrade takes effect immediately, and you pay a prorated amount for the rest of "
    "the current billing period.",
)
REFUND = Passage(
    id="billing#refunds",
    document_id="billing",
    title="Plans and billing — Refunds",
    text="Approved refunds go back to the original payment method within 5 to 10 business days.",
)
PAYPAL = "We accept Visa, Mastercard and American Express cards, and PayPal."
PADDING = (
    "The upgrade takes effect immediately, and you pay a prorated amount for the rest of "
    "the current billing period."
)


def test_padding_from_another_section_is_trimmed_and_the_answer_kept() -> None:
    verdict = judge("Can I pay with PayPal?", f"{PAYPAL} {PADDING}", [BILLING, UPGRADE])
    assert verdict.verdict == "answered"
    assert verdict.kept == [PAYPAL]
    assert verdict.removed == [PADDING] and verdict.unsupported == [1]


def test_supported_relevant_sentences_are_all_kept() -> None:
    verdict = judge("Can I pay by PayPal or bank transfer?", BILLING.text, [BILLING])
    assert verdict.verdict == "answered"
    assert verdict.unsupported == [] and verdict.kept == verdict.sentences


def test_a_sentence_no_passage_supports_is_removed_and_the_verdict_is_partial() -> None:
    made_up = "PayPal payments also earn a 5% discount on every plan."
    verdict = judge("Can I pay with PayPal?", f"{PAYPAL} {made_up}", [BILLING])
    assert verdict.removed == [made_up]
    assert verdict.verdict == "partial"  # what is left holds, but the draft invented a fact


def test_an_answer_to_a_neighbouring_question_is_not_an_answer() -> None:
    verdict = judge("Is there a Linux version of the desktop app?", REFUND.text, [REFUND])
    assert verdict.verdict == "not_answered"
    assert "linux" in verdict.missing


def test_an_answer_covering_part_of_the_question_is_partial() -> None:
    question = "Can refunds be paid out by cheque or wire?"
    verdict = judge(question, REFUND.text, [REFUND])
    assert verdict.verdict == "partial"
    assert "chequ" in verdict.missing


def test_nothing_supported_is_not_answered_and_everything_is_removed() -> None:
    verdict = judge("Can I pay with PayPal?", "Yes, PayPal and crypto both work.", [REFUND])
    assert verdict.verdict == "not_answered"
    assert verdict.unsupported == [0]


def test_an_empty_answer_is_not_answered() -> None:
    assert judge("Can I pay with PayPal?", "", [BILLING]).verdict == "not_answered"


def test_a_misspelt_question_word_is_read_as_the_passage_word() -> None:
    verdict = judge("How long do refnuds take?", REFUND.text, [REFUND])
    assert verdict.verdict == "answered"


async def test_the_local_provider_answers_a_judge_request_with_a_judgement() -> None:
    question = "Can I pay with PayPal?"
    request = ModelRequest(
        messages=[Message(role="user", content=question)],
        documents=[BILLING, UPGRADE],
        judge=JudgeInput(question=question, answer=f"{PAYPAL} {PADDING}"),
    )
    response = await LocalProvider().complete(request)
    assert response.judgement == judge(question, f"{PAYPAL} {PADDING}", [BILLING, UPGRADE])
    assert Judgement.model_validate_json(response.text) == response.judgement
    assert response.citations == [] and response.confidence is None


def test_a_judgement_naming_a_sentence_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="out of 0..1"):
        Judgement(verdict="partial", unsupported=[2], sentences=["a.", "b."])


def test_an_answer_that_never_names_what_the_question_names_is_not_a_whole_answer() -> None:
    question = "Do approved refunds go back to the original payment method on Stripe?"
    verdict = judge(question, REFUND.text, [REFUND])
    assert verdict.verdict == "partial" and verdict.missing == "strip"  # its stem
    assert judge(question.removesuffix(" on Stripe?"), REFUND.text, [REFUND]).verdict == "answered"
