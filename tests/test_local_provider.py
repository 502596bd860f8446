from collections.abc import Sequence

import pytest

from keel.schemas.model import Message, ModelRequest
from keel.schemas.retrieval import Passage
from tools.retrieval.knowledge_base import KnowledgeBase, default_knowledge_base
from tools.routing.local import NOT_FOUND_TEXT, LocalProvider

CONFIDENT = [
    ("How do I reset my password?", "reset-password"),
    ("How do I turn on two-factor authentication?", "two-factor-authentication"),
    ("Can I get a refund on my annual plan?", "plans-and-billing"),
    ("How do I export my notes to PDF?", "export-and-import"),
    ("How do I connect Quillpad to Slack?", "integrations"),
]
NOT_CONFIDENT = [
    "What's the weather in Paris tomorrow?",
    "it doesn't work",
    "Can you recommend a good pizza place?",
    "help",
]
LABELS = [
    "billing: invoice refund plan charge payment subscription",
    "account: password sign login two factor authentication",
    "other: anything else",
]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


def _ask(
    question: str, documents: Sequence[Passage] = (), labels: Sequence[str] = ()
) -> ModelRequest:
    return ModelRequest(
        messages=[
            Message(role="system", content="Answer from the documents."),
            Message(role="user", content=question),
        ],
        documents=list(documents),
        labels=list(labels),
    )


def _passage(pid: str, text: str, title: str = "Doc") -> Passage:
    return Passage(id=pid, document_id=pid.partition("#")[0], title=title, text=text)


@pytest.mark.parametrize(("question", "article"), CONFIDENT)
async def test_in_domain_questions_are_answered_confidently(kb, question, article):
    response = await LocalProvider().complete(_ask(question, kb.search(question, 4)))
    assert response.confidence >= 0.6
    assert response.citations
    assert response.citations[0].startswith(f"{article}#")
    assert response.text != NOT_FOUND_TEXT


@pytest.mark.parametrize("question", NOT_CONFIDENT)
def test_off_topic_or_vague_questions_are_not_confident(kb, question):
    response = LocalProvider().respond(_ask(question, kb.search(question, 4)))
    assert response.confidence < 0.6


def test_answer_is_copied_from_the_documents(kb):
    docs = kb.search("How do I reset my password?", 4)
    response = LocalProvider().respond(_ask("How do I reset my password?", docs))
    assert "click Forgot password" in response.text
    assert set(response.citations) <= {d.id for d in docs}
    assert response.label is None


def test_answer_keeps_document_order_and_cites_each_passage_once():
    docs = [
        _passage("a#one", "Refunds take ten days. Unrelated sentence here."),
        _passage("b#two", "A refund needs an invoice number. Refund requests go to Support."),
    ]
    response = LocalProvider().respond(_ask("refund", docs))
    assert response.text == (
        "Refunds take ten days. A refund needs an invoice number. Refund requests go to Support."
    )
    assert response.citations == ["a#one", "b#two"]


def test_weak_sentences_are_left_out():
    docs = [
        _passage("a#one", "Export a note to PDF from the export menu. Notes sync quickly."),
    ]
    response = LocalProvider().respond(_ask("export note pdf", docs))
    assert response.text == "Export a note to PDF from the export menu."


def test_no_documents_means_not_found():
    response = LocalProvider().respond(_ask("How do I reset my password?"))
    assert (response.text, response.citations, response.confidence) == (NOT_FOUND_TEXT, [], 0.0)


def test_question_without_content_words_means_not_found(kb):
    response = LocalProvider().respond(_ask("how do I?", kb.passages[:4]))
    assert (response.text, response.citations, response.confidence) == (NOT_FOUND_TEXT, [], 0.0)


def test_documents_without_evidence_mean_not_found():
    docs = [_passage("a#one", "Exports arrive by email.")]
    response = LocalProvider().respond(_ask("weather in Paris", docs))
    assert (response.text, response.citations, response.confidence) == (NOT_FOUND_TEXT, [], 0.0)


@pytest.mark.parametrize(
    "question",
    [q for q, _ in CONFIDENT]
    + NOT_CONFIDENT
    + ["sync", "Quillpad Plus Business Free plan price per user", "x", "notes notes notes"],
)
def test_confidence_is_within_bounds(kb, question):
    response = LocalProvider().respond(_ask(question, kb.search(question, 4)))
    assert 0.0 <= response.confidence <= 1.0


@pytest.mark.parametrize(
    ("question", "label"),
    [
        ("I was charged twice, can I get a refund?", "billing"),
        ("I forgot my password and cannot sign in", "account"),
        ("Where can I download an invoice for my subscription?", "billing"),
    ],
)
def test_classification_picks_the_best_overlapping_label(question, label):
    response = LocalProvider().respond(_ask(question, labels=LABELS))
    assert (response.text, response.label) == (label, label)
    assert 0.5 <= response.confidence < 1.0
    assert response.citations == []


def test_classification_confidence_grows_with_matches():
    one = LocalProvider().respond(_ask("refund", labels=LABELS))
    three = LocalProvider().respond(_ask("refund invoice charge", labels=LABELS))
    assert one.confidence == 0.5
    assert three.confidence == 0.75


def test_classification_falls_back_to_other():
    response = LocalProvider().respond(_ask("What's the weather like?", labels=LABELS))
    assert (response.label, response.confidence) == ("other", 0.0)


def test_classification_without_other_falls_back_to_first_label():
    response = LocalProvider().respond(_ask("pizza", labels=LABELS[1::-1]))
    assert response.label == "account"


def test_classification_ties_go_to_the_earliest_label():
    labels = ["sales: price", "billing: price", "other"]
    response = LocalProvider().respond(_ask("what is the price?", labels=labels))
    assert response.label == "sales"


def test_response_metadata_is_counted():
    docs = [_passage("a#one", "Reset your password from the sign-in page.", title="Passwords")]
    response = LocalProvider().respond(_ask("reset password", docs))
    assert response.provider == "local"
    assert response.model == "extractive-bm25"
    assert response.cost_usd == 0.0
    # 4 words of system prompt + 2 of question + 1 title word + 7 text words.
    assert response.usage.input_tokens == 14
    assert response.usage.output_tokens == len(response.text.split()) == 7
    assert response.latency_ms >= 0.0
