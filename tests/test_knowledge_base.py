from pathlib import Path

import pytest

from tools.retrieval.knowledge_base import KnowledgeBase, default_knowledge_base

ARTICLE = """
# Syncing your notes

Quillpad keeps notes in sync.

## Sync is stuck!

Sign out and back in.

## Offline mode

Edits upload later.
"""


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_chunks_sections_with_ids_and_titles(tmp_path):
    kb = KnowledgeBase.from_directory(_write(tmp_path, "sync-help.md", ARTICLE))
    assert [(p.id, p.document_id, p.title, p.text) for p in kb.passages] == [
        ("sync-help#intro", "sync-help", "Syncing your notes", "Quillpad keeps notes in sync."),
        (
            "sync-help#sync-is-stuck",
            "sync-help",
            "Syncing your notes — Sync is stuck!",
            "Sign out and back in.",
        ),
        (
            "sync-help#offline-mode",
            "sync-help",
            "Syncing your notes — Offline mode",
            "Edits upload later.",
        ),
    ]


def test_article_without_intro_has_no_intro_passage(tmp_path):
    kb = KnowledgeBase.from_directory(_write(tmp_path, "a.md", "# A\n\n## One\n\nBody."))
    assert [p.id for p in kb.passages] == ["a#one"]


def test_search_uses_section_titles(tmp_path):
    kb = KnowledgeBase.from_directory(_write(tmp_path, "sync-help.md", ARTICLE))
    assert kb.search("offline")[0].id == "sync-help#offline-mode"


def test_empty_directory_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="No \\*.md articles"):
        KnowledgeBase.from_directory(tmp_path)


def test_article_without_title_is_rejected(tmp_path):
    _write(tmp_path, "untitled.md", "## Section\n\nBody.")
    with pytest.raises(ValueError, match="untitled.md must start with a '# Title'"):
        KnowledgeBase.from_directory(tmp_path)


def test_repeated_section_is_rejected(tmp_path):
    _write(tmp_path, "twice.md", "# T\n## Same\nOne.\n## Same\nTwo.")
    with pytest.raises(ValueError, match="repeats section 'same'"):
        KnowledgeBase.from_directory(tmp_path)


def test_default_knowledge_base_has_eight_titled_articles(kb):
    articles = {p.document_id for p in kb.passages}
    assert len(articles) == 8
    assert len({p.id for p in kb.passages}) == len(kb.passages)
    assert all(p.text and p.title and p.score == 0.0 for p in kb.passages)


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
def test_search_finds_the_right_section(kb, query, passage_id):
    hits = kb.search(query)
    assert hits[0].document_id == passage_id.partition("#")[0]
    assert passage_id in [h.id for h in hits[:2]]


def test_search_returns_at_most_k_positive_scores_best_first(kb):
    hits = kb.search("password", k=3)
    assert len(hits) == 3
    assert all(h.document_id == "reset-password" for h in hits)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert scores[-1] > 0


def test_search_without_matches_returns_nothing(kb):
    assert kb.search("weather in Paris tomorrow") == []
    assert kb.search("how do I") == []


def test_search_does_not_mutate_stored_passages(kb):
    kb.search("refund")
    assert all(p.score == 0.0 for p in kb.passages)
