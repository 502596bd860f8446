"""Uploaded files as documents to ingest: Markdown, plain text, HTML and JSON Lines.

The API (multipart uploads) and `keel ingest` (files and folders) both read files here, so
a file becomes the same documents whichever way it arrives.

- **Markdown** (``.md``, ``.markdown``) and **plain text** (``.txt``, ``.text``) are kept
  as they are, without front matter. The title is a front-matter ``title:``, else the
  first ``# `` heading, else the file's name.
- **HTML** (``.html``, ``.htm``): the visible text, read with the standard library's
  `html.parser`. Scripts, styles, templates, ``<noscript>``, ``<svg>`` and the head are
  dropped; headings become Markdown headings and blocks become paragraphs, so the chunker
  can cut along the page's structure. The title is ``<title>``, else the first heading.
- **JSON Lines** (``.jsonl``, ``.ndjson``): one document per line, an object with
  ``text`` and optionally ``id``, ``title``, ``format`` (``markdown`` or ``text``) and
  ``metadata``; blank lines are skipped.

A file's document id is its name as given (a folder's files: their path relative to the
folder, with ``/``), so re-ingesting the same file replaces its document. A JSON Lines
document without an ``id`` is ``<file name>:<line number>``. Every document's metadata
records the file it came from (``source``) and the file's format (``file_format``).

A file that cannot become documents raises `keel.errors.InvalidDocument` (empty, not text in
a known encoding, an invalid line), or its `UnsupportedMediaType` (none of the formats above),
or `BodyTooDeep` (a JSON Lines row nested past `keel.json_depth.MAX_JSON_DEPTH`); the message
starts with the file's name.
"""

import re
from collections.abc import Iterable, Iterator, Mapping
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, Field, JsonValue, ValidationError

from keel.errors import InvalidDocument, UnsupportedMediaType
from keel.json_depth import check_depth
from keel.schemas.retrieval import DocumentFormat, DocumentIn

__all__ = [
    "ACCEPTED_MEDIA_TYPES",
    "EXTENSIONS",
    "FileFormat",
    "file_format",
    "find_files",
    "html_text",
    "parse_file",
    "unreadable",
]

FileFormat = Literal["markdown", "text", "html", "jsonl"]

EXTENSIONS: dict[str, FileFormat] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
"""File name endings Keel reads, and the format of each."""

_MEDIA_TYPES: dict[str, FileFormat] = {
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/plain": "text",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/jsonl": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/jsonlines": "jsonl",
}

ACCEPTED_MEDIA_TYPES = ("text/markdown", "text/plain", "text/html", "application/jsonl")
"""One media type per format, as named to a client whose file was refused."""


def unreadable(source: str, reason: str) -> InvalidDocument:
    """The failure of `source` (a file, or a document id) that cannot become a document."""
    return InvalidDocument(f"{source}: {reason}")


def file_format(name: str, media_type: str | None = None) -> FileFormat:
    """The format of a file, from its name's ending, else its media type.

    Raises:
        UnsupportedMediaType: Neither names a format Keel reads.

    """
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    essence = (media_type or "").partition(";")[0].strip().lower()
    if essence in _MEDIA_TYPES:
        return _MEDIA_TYPES[essence]
    what = repr(suffix) if suffix else f"(media type {essence or 'unknown'!r})"
    raise UnsupportedMediaType(
        f"{name}: unsupported file type {what}; accepted: Markdown, plain text, HTML and JSON "
        f"Lines ({', '.join(EXTENSIONS)}; {', '.join(ACCEPTED_MEDIA_TYPES)})"
    )


def parse_file(name: str, data: bytes, media_type: str | None = None) -> list[DocumentIn]:
    """The documents in one file.

    Args:
        name: The file's name (or path relative to the folder ingested): the document id.
        data: The file's bytes.
        media_type: The media type the file was sent with, if any; its ``charset`` is
            honoured, and it names the format when the file's name does not.

    Returns:
        The file's documents, in order (one, except for JSON Lines).

    Raises:
        UnsupportedMediaType: The file is in no format Keel reads.
        InvalidDocument: The file is empty, undecodable, or holds an invalid document.
        BodyTooDeep: A JSON Lines row nests too deep to read.

    """
    fmt = file_format(name, media_type)
    text = _decode(name, data, media_type, sniff_meta=fmt == "html")
    if fmt == "jsonl":
        return list(_jsonl(name, text))  # a file that is not blank has a line to read
    if fmt == "html":
        title, body = html_text(text)
    else:
        title, body = _markdown_title(text), _FRONT_MATTER.sub("", text, count=1).strip()
    document = {
        "id": name,
        "title": title or PurePosixPath(name).stem,
        "text": body,
        "format": "text" if fmt == "text" else "markdown",
        "metadata": {"source": name, "file_format": fmt},
    }
    return [_document(name, document, where="")]


def find_files(paths: Iterable[Path]) -> list[tuple[str, Path]]:
    """The files to ingest under `paths`, each with the document name it gets.

    A file is taken as given (its name is its file name) and must be in a supported format;
    a folder is walked recursively for supported files (their names are their paths
    relative to the folder), skipping hidden files and folders.

    Raises:
        UnsupportedMediaType: A file named directly is in no supported format.
        FileNotFoundError: A path does not exist.

    """
    found: list[tuple[str, Path]] = []
    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(path)
                hidden = any(part.startswith(".") for part in relative.parts)
                if file.is_file() and not hidden and file.suffix.lower() in EXTENSIONS:
                    found.append((relative.as_posix(), file))
        elif path.is_file():
            file_format(path.name)
            found.append((path.name, path))
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return found


def html_text(html: str) -> tuple[str, str]:
    """The title and the visible text of an HTML page, headings as Markdown headings."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return parser.title, parser.text()


# --- decoding --------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)


def _decode(name: str, data: bytes, media_type: str | None, *, sniff_meta: bool) -> str:
    if not data.strip():
        raise unreadable(name, "the file is empty")
    charsets = ["utf-8-sig"]
    declared = re.search(r"charset\s*=\s*\"?([\w.:-]+)", media_type or "", re.IGNORECASE)
    if declared:
        charsets.insert(0, declared[1])
    if sniff_meta and (meta := _META_CHARSET.search(data[:4096])):
        charsets.insert(0, meta[1].decode("ascii"))
    for charset in charsets:
        try:
            text = data.decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
        if "\x00" not in text:
            return text.replace("\r\n", "\n").replace("\r", "\n")
    tried = ", ".join(dict.fromkeys(c.lower() for c in charsets))
    raise unreadable(name, f"not text in a known encoding (tried {tried})")


# --- Markdown ---------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:\s*(.+?)\s*$", re.MULTILINE)
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _markdown_title(text: str) -> str:
    front = _FRONT_MATTER.match(text)
    if front and (title := _FRONT_TITLE.search(front[1])):
        return title[1].strip("\"'")
    heading = _HEADING.search(text)
    return heading[1] if heading else ""


# --- JSON Lines -------------------------------------------------------------------------


class _JsonLine(BaseModel, extra="forbid"):
    id: str | None = None
    title: str = ""
    text: str
    format: DocumentFormat = "text"
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


def _jsonl(name: str, text: str) -> Iterator[DocumentIn]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"line {number}: "
        check_depth(line.encode(), f"{name}: line {number}")
        try:
            row = _JsonLine.model_validate_json(line)
        except ValidationError as err:
            raise unreadable(name, f"{where}{_first_error(err)}") from err
        document = row.model_dump() | {
            "id": row.id or f"{name}:{number}",
            "text": row.text.strip(),
            "metadata": {"source": name, "file_format": "jsonl", **row.metadata},
        }
        yield _document(name, document, where=where)


def _document(name: str, fields: Mapping[str, object], *, where: str) -> DocumentIn:
    """A valid document (some text, a usable id), or `InvalidDocument` saying why not."""
    try:
        return DocumentIn.model_validate(fields)
    except ValidationError as err:
        raise unreadable(name, f"{where}{_first_error(err)}") from err


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    if first["type"] == "json_invalid":
        return f"not a JSON object ({first['msg']})"
    field = ".".join(str(p) for p in first["loc"])
    return f"{field}: {first['msg']}" if field else first["msg"]


# --- HTML -------------------------------------------------------------------------------

_HIDDEN = frozenset({"script", "style", "template", "noscript", "svg", "head", "iframe"})
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt",
        "figcaption", "figure", "footer", "form", "header", "hr", "li", "main", "nav", "ol",
        "p", "pre", "section", "summary", "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")


class _HtmlText(HTMLParser):
    """Collects the visible text of a page as Markdown-ish paragraphs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self._hidden: list[str] = []
        self._in_title = False
        self._pre = 0
        self._blocks: list[str] = []
        self._current: list[str] = []
        self._heading = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag == "body" and "head" in self._hidden:
            self._hidden.clear()  # `</head>` is optional: the body starts visible.
        if tag in _HIDDEN:
            self._hidden.append(tag)
            return
        if tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag in _BLOCKS:
            self._flush()
            if tag == "li":
                self._current.append("- ")
        if tag == "pre":
            self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _HIDDEN:
            # Close the innermost matching hidden element (and anything left open in it).
            if tag in self._hidden:
                while self._hidden and self._hidden.pop() != tag:
                    pass
            return
        if tag in _HEADINGS or tag in _BLOCKS:
            self._flush()
        if tag == "pre" and self._pre:
            self._pre -= 1

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = _SPACES.sub(" ", f"{self.title} {data}").strip()
            return
        if self._hidden:
            return
        self._current.append(data if self._pre else re.sub(r"\s+", " ", data))

    def _flush(self) -> None:
        raw = "".join(self._current)
        text = raw.strip("\n") if self._pre else _SPACES.sub(" ", raw).strip()
        if text:
            if self._heading:
                text = f"{'#' * self._heading} {text}"
                if not self.title and self._heading == 1:
                    self.title = text.lstrip("# ")
            self._blocks.append(text)
        self._current = []
        self._heading = 0

    def text(self) -> str:
        self._flush()
        return "\n\n".join(self._blocks)
