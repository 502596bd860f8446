"""The built-in `quillpad` collection: the help-centre articles shipped in ``kb/``.

Each ``*.md`` file is one Markdown document whose id is the file name without ``.md``;
its ``# Title`` line names it and its headings cut it into passages
(``reset-password#intro``, ``reset-password#<section-slug>``). A worker ingests them when
it starts; unchanged articles are skipped by their content hash, so this costs nothing
after the first start.
"""

from pathlib import Path

from keel.errors import CollectionExists
from keel.schemas.retrieval import (
    CollectionInfo,
    CollectionSpec,
    DocumentIn,
    SearchConfig,
)
from tools.retrieval.service import RetrievalService

__all__ = ["KB_DIR", "QUILLPAD", "QUILLPAD_SPEC", "ensure_quillpad", "markdown_documents"]

QUILLPAD = "quillpad"
"""The help centre's collection name."""

KB_DIR = Path(__file__).parent / "kb"
"""Where the help-centre articles are."""

QUILLPAD_SPEC = CollectionSpec(
    name=QUILLPAD,
    description="Quillpad help-centre articles.",
    # BM25 alone: the `support` agent weighs retrieval's evidence by BM25's absolute scores
    # (top score, margin), which fusion would make relative.
    embedding=None,
    # Section headings name what a section answers; customers ask questions.
    search=SearchConfig(title_weight=1.0, query_stopwords="extended"),
)
"""How the help centre is indexed and searched."""


def markdown_documents(folder: Path) -> list[DocumentIn]:
    """Every ``*.md`` file of a folder as a Markdown document, in file-name order."""
    return [
        DocumentIn(id=path.stem, text=path.read_text(encoding="utf-8"), format="markdown")
        for path in sorted(folder.glob("*.md"))
    ]


async def ensure_quillpad(service: RetrievalService) -> CollectionInfo:
    """Create the `quillpad` collection and index the shipped articles (idempotent)."""
    try:
        await service.create_collection(QUILLPAD_SPEC)
    except CollectionExists:
        # Made by an earlier version: search it the way this one does.
        await service.set_search_config(QUILLPAD, QUILLPAD_SPEC.search)
    await service.upsert(QUILLPAD, markdown_documents(KB_DIR))
    return await service.refresh(QUILLPAD)
