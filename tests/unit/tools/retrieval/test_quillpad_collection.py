"""The built-in `quillpad` collection: the shipped help-centre articles, on the real engine."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from keel.db import create_engine, init_db, session_factory
from keel.schemas.retrieval import Passage, SearchConfig, SearchQuery
from tools.retrieval.builtin import (
    KB_DIR,
    QUILLPAD,
    QUILLPAD_SPEC,
    ensure_quillpad,
    markdown_documents,
)
from tools.retrieval.service import RetrievalService
from tools.retrieval.vectors import DiskVectors


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RetrievalService]:
    root = tmp_path_factory.mktemp("quillpad")
    engine = create_engine(f"sqlite+aiosqlite:///{root / 'keel.db'}")
    await init_db(engine)
    made = RetrievalService(session_factory(engine), DiskVectors(), root)
    await ensure_quillpad(made)
    yield made
    await made.aclose()
    await engine.dispose()


async def _search(service: RetrievalService, query: str, k: int = 4) -> list[Passage]:
    return (await service.search(SearchQuery(collection=QUILLPAD, query=query, k=k))).passages


async def test_the_articles_are_indexed_once_and_again_is_a_no_op(
    service: RetrievalService,
) -> None:
    info = await service.get_collection(QUILLPAD)
    assert (info.documents, info.duplicates, info.embedding) == (8, 0, None)
    again = await ensure_quillpad(service)
    assert again.version == info.version and again.chunks == info.chunks


async def test_passages_are_article_sections() -> None:
    documents = {d.id: d for d in markdown_documents(KB_DIR)}
    assert len(documents) == 8 and all(d.format == "markdown" for d in documents.values())


async def test_passage_ids_titles_and_texts(service: RetrievalService) -> None:
    best = (await _search(service, "reset password from the sign-in page", k=1))[0]
    assert best.id == "reset-password#reset-your-password-from-the-sign-in-page"
    assert best.document_id == "reset-password" and best.collection == QUILLPAD
    assert (
        best.title
        == "Resetting your password and signing in — Reset your password from the sign-in page"
    )
    assert "Forgot password" in best.text and best.score > 0 and best.flags == []


@pytest.mark.parametrize(
    ("query", "passage_id"),
    [
        ("How do I reset my password?", "reset-password#reset-your-password-from-the-sign-in-page"),
        (
            "How do I turn on two-factor authentication?",
            "two-factor-authentication#turn-on-two-factor-authentication",
        ),
        ("Can I get a refund on my annual plan?", "plans-and-billing#refund-policy"),
        ("How do I export my notes to PDF?", "export-and-import#export-a-note-to-pdf-or-markdown"),
        ("How do I connect Quillpad to Slack?", "integrations#connect-quillpad-to-slack"),
        ("my sync is stuck", "sync-troubleshooting#sync-is-stuck-or-not-updating"),
        ("where are my invoices", "plans-and-billing#download-invoices-and-receipts"),
        ("cancel subscription", "change-or-cancel-subscription#cancel-your-subscription"),
        ("import notes from Evernote", "export-and-import#import-from-evernote"),
        ("what can a guest do in a workspace", "sharing-and-permissions#workspace-roles"),
    ],
)
async def test_search_finds_the_right_section(
    service: RetrievalService, query: str, passage_id: str
) -> None:
    hits = await _search(service, query)
    assert hits[0].document_id == passage_id.partition("#")[0]
    assert passage_id in [h.id for h in hits[:2]]


async def test_search_returns_at_most_k_positive_scores_best_first(
    service: RetrievalService,
) -> None:
    hits = await _search(service, "password", k=3)
    assert len(hits) == 3 and all(h.document_id == "reset-password" for h in hits)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0


async def test_search_without_matches_returns_nothing(service: RetrievalService) -> None:
    assert await _search(service, "weather in Paris tomorrow") == []
    assert await _search(service, "how do I") == []


async def test_an_older_configuration_is_brought_up_to_date(service: RetrievalService) -> None:
    await service.set_search_config(QUILLPAD, SearchConfig())
    assert (await service.get_collection(QUILLPAD)).search == SearchConfig()
    again = await ensure_quillpad(service)
    assert again.search == QUILLPAD_SPEC.search != SearchConfig()


def test_the_articles_ship_with_the_package() -> None:
    assert KB_DIR == Path(__file__).parents[4] / "tools" / "retrieval" / "kb"
