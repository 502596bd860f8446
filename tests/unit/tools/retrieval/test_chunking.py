"""Documents cut into chunks along their structure, with stable ids and overlap."""

import pytest

from keel.schemas.retrieval import ChunkingConfig, DocumentIn
from tools.retrieval.chunking import chunk_document

ARTICLE = """
# Syncing your notes

Quillpad keeps notes in sync.

## Sync is stuck!

Sign out and back in.

```
# not a heading inside code
```

## Offline mode

Edits upload later.

## Offline mode

Same heading again.
"""


def _chunks(document: DocumentIn, **config: int) -> list[tuple[str, int, str, str]]:
    return [
        (c.id, c.seq, c.title, c.text)
        for c in chunk_document(document, ChunkingConfig.model_validate(config))
    ]


def test_markdown_is_cut_at_headings_with_slug_ids_and_section_titles() -> None:
    chunks = _chunks(DocumentIn(id="sync-help", text=ARTICLE, format="markdown"))
    assert chunks == [
        ("sync-help#intro", 0, "Syncing your notes", "Quillpad keeps notes in sync."),
        (
            "sync-help#sync-is-stuck",
            1,
            "Syncing your notes — Sync is stuck!",
            "Sign out and back in.\n\n```\n# not a heading inside code\n```",
        ),
        ("sync-help#offline-mode", 2, "Syncing your notes — Offline mode", "Edits upload later."),
        ("sync-help#offline-mode-2", 3, "Syncing your notes — Offline mode", "Same heading again."),
    ]


def test_a_given_title_wins_and_the_first_heading_is_then_a_section() -> None:
    chunks = _chunks(DocumentIn(id="a", title="Given", text="# First\n\nBody.", format="markdown"))
    assert chunks == [("a#first", 0, "Given — First", "Body.")]


def test_plain_text_is_numbered_and_never_cut_at_hash_lines() -> None:
    chunks = _chunks(DocumentIn(id="t", title="T", text="# not a heading\n\nsecond paragraph"))
    assert chunks == [("t#1", 0, "T", "# not a heading\n\nsecond paragraph")]


def test_long_sections_are_packed_by_paragraph_with_overlap() -> None:
    paragraphs = [f"Paragraph {n} " + "word " * 30 for n in range(6)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    chunks = _chunks(DocumentIn(id="long", text=text), max_chars=400, overlap_chars=50)
    assert [c[0] for c in chunks] == [f"long#{n}" for n in range(1, len(chunks) + 1)]
    assert len(chunks) >= 3 and all(len(c[3]) <= 400 for c in chunks)
    for previous, current in zip(chunks, chunks[1:], strict=False):
        tail = current[3].split("\n\n", 1)[0]
        assert previous[3].endswith(tail) and 0 < len(tail) <= 50  # overlap, whole words
    every = " ".join(c[3] for c in chunks)
    assert all(f"Paragraph {n}" in every for n in range(6))


def test_a_huge_paragraph_is_cut_at_sentences_then_words() -> None:
    sentence = "This sentence has exactly eight words in it. "
    text = sentence * 40 + "x" * 700
    chunks = _chunks(DocumentIn(id="big", text=text), max_chars=300, overlap_chars=0)
    assert all(len(c[3]) <= 300 for c in chunks)
    assert "".join(c[3] for c in chunks).replace(" ", "") == text.replace(" ", "")


def test_markdown_section_ids_continue_with_a_suffix() -> None:
    text = "# T\n\n## Big\n\n" + "\n\n".join("word " * 40 for _ in range(4))
    chunks = _chunks(
        DocumentIn(id="d", text=text, format="markdown"), max_chars=300, overlap_chars=40
    )
    assert [c[0] for c in chunks][:3] == ["d#big", "d#big-2", "d#big-3"]


def test_blank_documents_have_no_chunks() -> None:
    assert _chunks(DocumentIn(id="e", text="# Only a title\n", format="markdown")) == []


def test_overlap_must_be_below_half_the_size() -> None:
    with pytest.raises(ValueError, match="overlap_chars"):
        ChunkingConfig(max_chars=200, overlap_chars=100)
