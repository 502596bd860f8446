"""A small in-memory knowledge base of Markdown help articles, searched with BM25.

Each ``*.md`` file is one article: its first non-blank line is ``# Title`` and its
``## `` headings cut it into passages. The file name without ``.md`` is the document id,
so ``reset-password.md`` yields passages ``reset-password#intro`` (the text before the
first ``##``, when there is any) and ``reset-password#<section-slug>`` for each section.
A passage is indexed on its title ("<Article title> — <Section heading>") and its text,
so a query that names the article's subject finds every section of it.
"""

import re
from pathlib import Path

from keel.schemas.retrieval import Passage
from tools.text import BM25, tokenize

__all__ = ["KnowledgeBase", "default_knowledge_base"]

_NON_SLUG = re.compile(r"[^a-z0-9]+")


class KnowledgeBase:
    """Passages from a folder of Markdown articles, ranked by BM25."""

    def __init__(self, passages: list[Passage]):
        """Index passages.

        Args:
            passages: The passages to search, in a stable order.

        """
        self._passages = list(passages)
        self._index = BM25([tokenize(f"{p.title}\n{p.text}") for p in self._passages])

    @classmethod
    def from_directory(cls, path: Path) -> "KnowledgeBase":
        """Load and chunk every ``*.md`` file in a directory, in file-name order.

        Args:
            path: Directory holding the articles.

        Returns:
            The knowledge base.

        Raises:
            ValueError: If the directory has no ``*.md`` file, an article does not
                start with a ``# Title`` line, or two sections of one article share a slug.

        """
        files = sorted(path.glob("*.md"))
        if not files:
            raise ValueError(f"No *.md articles in knowledge base directory {path}")
        passages: list[Passage] = []
        for file in files:
            passages.extend(_chunk(file.stem, file.read_text(encoding="utf-8"), file))
        return cls(passages)

    @property
    def passages(self) -> list[Passage]:
        """Every passage, in load order, with score 0."""
        return list(self._passages)

    def search(self, query: str, k: int = 4) -> list[Passage]:
        """Find the passages that best match a query.

        Args:
            query: Free text.
            k: The most passages to return.

        Returns:
            Up to ``k`` passages with a positive score, best first; equal scores keep
            load order.

        """
        scores = self._index.scores(tokenize(query))
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
        return [
            self._passages[i].model_copy(update={"score": scores[i]})
            for i in ranked[:k]
            if scores[i] > 0
        ]


def default_knowledge_base() -> KnowledgeBase:
    """Load the Quillpad help-centre articles shipped in ``tools/retrieval/kb``."""
    return KnowledgeBase.from_directory(Path(__file__).parent / "kb")


def _slug(text: str) -> str:
    return _NON_SLUG.sub("-", text.lower()).strip("-")


def _chunk(doc_id: str, markdown: str, source: Path) -> list[Passage]:
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None or not lines[start].startswith("# "):
        raise ValueError(f"Knowledge base article {source} must start with a '# Title' line")
    title = lines[start][2:].strip()
    # Sections as (heading, body lines); the intro has no heading.
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            sections.append((line[3:].strip(), []))
        else:
            sections[-1][1].append(line)
    passages: list[Passage] = []
    for heading, body in sections:
        text = "\n".join(body).strip()
        if heading is None and not text:
            continue
        section_id = _slug(heading) if heading else "intro"
        if any(p.id == f"{doc_id}#{section_id}" for p in passages):
            raise ValueError(f"Knowledge base article {source} repeats section {section_id!r}")
        passages.append(
            Passage(
                id=f"{doc_id}#{section_id}",
                document_id=doc_id,
                title=f"{title} — {heading}" if heading else title,
                text=text,
            )
        )
    return passages
