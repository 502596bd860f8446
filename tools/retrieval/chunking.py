"""Cut documents into chunks along their structure.

Markdown is cut at ATX headings (``#`` to ``######``, not inside fenced code); a leading
``# Title`` names the document when it has no title of its own. Plain text is one section.
A section becomes one chunk when it fits ``max_chars``; a longer one is packed paragraph by
paragraph (a paragraph too long on its own is cut at sentence ends, then at spaces), and
each chunk after the first starts with the last ``overlap_chars`` of the previous one, cut
at a word boundary.

Chunk ids are stable and readable: in Markdown ``<doc>#<heading-slug>`` (``intro`` for the
text before the first heading; ``-2``, ``-3``… for the further chunks of a long section and
for repeated headings), in plain text ``<doc>#1``, ``<doc>#2``… A chunk's title is the
document's title, followed by `` — <heading>`` for a section.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from keel.schemas.retrieval import ChunkingConfig, DocumentIn

__all__ = ["Chunk", "chunk_document", "slug"]

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_NON_SLUG = re.compile(r"[^a-z0-9]+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Chunk:
    """One chunk of a document, in document order (`seq` from 0)."""

    id: str
    seq: int
    title: str
    text: str


def slug(text: str) -> str:
    """Lowercase ASCII words joined by ``-``."""
    return _NON_SLUG.sub("-", text.lower()).strip("-")


def chunk_document(document: DocumentIn, config: ChunkingConfig) -> list[Chunk]:
    """Cut a document into chunks (see the module docstring).

    Args:
        document: The document; `format` says whether headings are structure.
        config: Chunk size and overlap.

    Returns:
        The chunks in order; empty when the document has no text.

    """
    title = document.title.strip()
    if document.format == "markdown":
        title, sections = _markdown_sections(document.text, title)
    else:
        sections = [(None, document.text)]
    chunks: list[Chunk] = []
    used: set[str] = set()
    for heading, body in sections:
        pieces = _pack(_paragraphs(body), config)
        section_title = f"{title} — {heading}" if heading and title else heading or title
        for part, text in enumerate(pieces, start=1):
            if document.format == "markdown":
                base = (slug(heading) or "section") if heading else "intro"
                local = base if part == 1 else f"{base}-{part}"
            else:
                local = str(len(chunks) + 1)
            local = _unique(local, used)
            chunks.append(Chunk(f"{document.id}#{local}", len(chunks), section_title, text))
    return chunks


def _unique(local: str, used: set[str]) -> str:
    candidate, n = local, 1
    while candidate in used:
        n += 1
        candidate = f"{local}-{n}"
    used.add(candidate)
    return candidate


def _markdown_sections(text: str, title: str) -> tuple[str, list[tuple[str | None, str]]]:
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    fenced = False
    seen_content = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match is None:
            sections[-1][1].append(line)
            seen_content = seen_content or bool(line.strip())
            continue
        level, heading = len(match.group(1)), match.group(2).strip()
        if level == 1 and not title and not seen_content and len(sections) == 1:
            title = heading  # the document's own title line
            continue
        sections.append((heading, []))
        seen_content = True
    return title, [(heading, "\n".join(lines)) for heading, lines in sections]


def _paragraphs(body: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH_BREAK.split(body) if p.strip()]


def _pack(paragraphs: list[str], config: ChunkingConfig) -> list[str]:
    """Paragraphs packed into chunks of at most `max_chars`, with overlap."""
    limit, overlap = config.max_chars, config.overlap_chars
    chunks: list[str] = []
    current = ""
    for piece in _pieces(paragraphs, limit - overlap - 2):
        joined = f"{current}\n\n{piece}" if current else piece
        if len(joined) <= limit:
            current = joined
            continue
        chunks.append(current)
        tail = _tail(current, overlap)
        current = f"{tail}\n\n{piece}" if tail else piece
    if current:
        chunks.append(current)
    return chunks


def _pieces(paragraphs: list[str], size: int) -> list[str]:
    """Paragraphs, with any longer than `size` cut at sentence ends, then at spaces."""
    pieces: list[str] = []
    for paragraph in paragraphs:
        if len(paragraph) <= size:
            pieces.append(paragraph)
            continue
        sentences = _SENTENCE_END.split(paragraph)
        pieces += _join_runs((run for s in sentences for run in _split_long(s, size)), size)
    return pieces


def _split_long(text: str, size: int) -> list[str]:
    """`text` cut at spaces (or anywhere, for one huge word) into runs of at most `size`."""
    cuts = (word[i : i + size] for word in text.split() for i in range(0, len(word), size))
    return _join_runs(cuts, size)


def _join_runs(runs: Iterable[str], size: int) -> list[str]:
    """Consecutive `runs` (each at most `size`) joined by spaces into texts of at most `size`."""
    packed: list[str] = []
    current = ""
    for run in runs:
        joined = f"{current} {run}" if current else run
        if len(joined) <= size:
            current = joined
        else:
            packed.append(current)
            current = run
    if current:
        packed.append(current)
    return packed


def _tail(text: str, overlap: int) -> str:
    """The end of `text`, at most `overlap` characters, starting at a word."""
    if overlap <= 0 or not text:
        return ""
    tail = text[-overlap:]
    if len(text) > overlap and not text[-overlap - 1].isspace():
        cut = re.search(r"\s", tail)
        tail = tail[cut.end() :] if cut else ""
    return tail.strip()
