from collections.abc import Sequence

import pytest

from keel.db import create_engine, init_db, session_factory
from keel.schemas.model import Message, ModelRequest
from keel.schemas.retrieval import Passage, SearchQuery
from tools.models.local import NOT_FOUND_TEXT, LocalProvider
from tools.retrieval.builtin import QUILLPAD, ensure_quillpad
from tools.retrieval.service import RetrievalService
from tools.retrieval.vectors import DiskVectors

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


BOUNDS = ["sync", "Quillpad Plus Business Free plan price per user", "x", "notes notes notes"]


@pytest.fixture(scope="module")
async def kb(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Passage]]:
    """The help-centre passages the engine finds for each question (its best four)."""
    root = tmp_path_factory.mktemp("kb")
    engine = create_engine(f"sqlite+aiosqlite:///{root / 'keel.db'}")
    await init_db(engine)
    service = RetrievalService(session_factory(engine), DiskVectors(), root)
    await ensure_quillpad(service)
    found = {}
    for question in [q for q, _ in CONFIDENT] + NOT_CONFIDENT + BOUNDS:
        query = SearchQuery(collection=QUILLPAD, query=question, k=4)
        found[question] = (await service.search(query)).passages
    await service.aclose()
    await engine.dispose()
    return found


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
    response = await LocalProvider().complete(_ask(question, kb[question]))
    assert response.confidence >= 0.6
    assert response.citations
    assert response.citations[0].startswith(f"{article}#")
    assert response.text != NOT_FOUND_TEXT


@pytest.mark.parametrize("question", NOT_CONFIDENT)
def test_off_topic_or_vague_questions_are_not_confident(kb, question):
    response = LocalProvider().respond(_ask(question, kb[question]))
    assert response.confidence < 0.6


def test_a_misspelt_question_is_read_as_the_documents_words(kb):
    docs = kb["How do I reset my password?"]
    typo = LocalProvider().respond(_ask("how do i resett my pasword", docs))
    right = LocalProvider().respond(_ask("How do I reset my password?", docs))
    assert (typo.text, typo.confidence) == (right.text, right.confidence)


def test_a_missing_side_word_weighs_less_than_a_missing_name():
    docs = [_passage("s#1", "To share a Quillpad note, click Share.", "Share a note")]
    side = LocalProvider().respond(_ask("How do I share a Quillpad note with a colleague?", docs))
    named = LocalProvider().respond(_ask("How do I share a Quillpad note with Trello?", docs))
    assert side.confidence == round(3 / 3.5, 3)
    assert named.confidence == round(3 / 4, 3)


def test_documents_that_mention_none_of_the_questions_names_halve_confidence():
    docs = [_passage("apps#1", "Every version of the desktop app syncs your notes.", "Apps")]
    response = LocalProvider().respond(_ask("Is there a Linux version of the desktop app?", docs))
    assert response.confidence == round(3 / 4 * 0.5, 3)


def test_a_name_may_be_answered_by_implication_when_another_is_mentioned():
    text = "The Zapier integration is available on the Plus and Business plans."
    question = "Is the Zapier integration available on the Free plan?"
    response = LocalProvider().respond(_ask(question, [_passage("z#1", text, "Zapier")]))
    assert response.confidence == round(4 / 5, 3)


def test_a_capitalised_word_opening_a_sentence_is_not_a_name():
    docs = [_passage("s#1", "To share a note, click Share and pick people.", "Share a note")]
    response = LocalProvider().respond(_ask("How do I share a note? Thanks!", docs))
    assert response.confidence == round(2 / 2.5 * 0.8, 3)


def test_confidence_comes_from_one_article_not_words_spread_over_several():
    docs = [
        _passage("billing#1", "Large invoices can be paid by bank transfer.", "Billing"),
        _passage("sharing#1", "Every workspace has exactly one owner.", "Roles"),
    ]
    response = LocalProvider().respond(_ask("transfer workspace owner", docs))
    assert response.citations == ["billing#1", "sharing#1"]
    assert response.confidence == round(2 / 3 * 0.8, 3)


def test_answer_is_copied_from_the_documents(kb):
    docs = kb["How do I reset my password?"]
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
    response = LocalProvider().respond(_ask("how do I?", kb["How do I reset my password?"]))
    assert (response.text, response.citations, response.confidence) == (NOT_FOUND_TEXT, [], 0.0)


def test_documents_without_evidence_mean_not_found():
    docs = [_passage("a#one", "Exports arrive by email.")]
    response = LocalProvider().respond(_ask("weather in Paris", docs))
    assert (response.text, response.citations, response.confidence) == (NOT_FOUND_TEXT, [], 0.0)


@pytest.mark.parametrize(
    "question",
    [q for q, _ in CONFIDENT] + NOT_CONFIDENT + BOUNDS,
)
def test_confidence_is_within_bounds(kb, question):
    response = LocalProvider().respond(_ask(question, kb[question]))
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
