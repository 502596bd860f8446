"""Reading uploaded files as documents (`keel.documents`), shared by the API and the CLI."""

from pathlib import Path

import pytest

from keel.documents import find_files, html_text, parse_file
from keel.errors import BodyTooDeep, InvalidDocument, UnsupportedMediaType

PAGE = """<!doctype html>
<html><head><meta charset="windows-1252"><title>Sync &amp; you</title>
<style>p { color: red }</style><script>alert("hidden")</script>
<body>
  <nav><a href="/">Home</a></nav>
  <h1>Sync   guide</h1>
  <p>Open <b>Settings</b>,
     then <i>Sync</i>.</p>
  <ul><li>Desktop</li><li>Mobile</li></ul>
  <h2>Conflicts</h2>
  <pre>keep
  both</pre>
  <noscript>Enable JavaScript</noscript><template><p>later</p></template>
  <p>Caf\xe9 &lt;tag&gt;</p>
</body></html>"""


def test_html_keeps_visible_text_and_structure() -> None:
    (document,) = parse_file("help/sync.html", PAGE.encode("cp1252"))

    assert document.id == "help/sync.html"
    assert document.title == "Sync & you"
    assert document.format == "markdown"
    assert document.text == (
        "Home\n\n# Sync guide\n\nOpen Settings, then Sync.\n\n- Desktop\n\n- Mobile\n\n"
        "## Conflicts\n\nkeep\n  both\n\nCafé <tag>"
    )
    assert document.metadata == {"source": "help/sync.html", "file_format": "html"}


def test_html_without_a_title_takes_the_first_heading_and_survives_an_open_head() -> None:
    title, text = html_text("<head><meta name=x><body><h1>First</h1><p>Body.</p>")
    assert (title, text) == ("First", "# First\n\nBody.")


def test_markdown_title_from_front_matter_then_heading_then_file_name() -> None:
    front = parse_file("a.md", b"---\ntitle: 'Front'\ntags: [x]\n---\n# Heading\n\nText.")[0]
    assert (front.title, front.text) == ("Front", "# Heading\n\nText.")
    assert parse_file("b.markdown", b"Intro.\n\n# Heading\n\nText.")[0].title == "Heading"
    plain = parse_file("notes/c.txt", "\ufeffJust words.\r\nMore.".encode())[0]
    assert (plain.title, plain.text, plain.format) == ("c", "Just words.\nMore.", "text")


def test_charset_of_the_upload_is_honoured() -> None:
    (document,) = parse_file(
        "upload", "Crème brûlée".encode("latin-1"), "text/plain; charset=latin-1"
    )
    assert document.text == "Crème brûlée"


def test_json_lines_one_document_per_line() -> None:
    data = (
        b'{"id": "a", "title": "A", "text": " first ", "metadata": {"lang": "en"}}\n\n'
        b'{"text": "# second", "format": "markdown"}\n'
    )
    first, second = parse_file("rows.ndjson", data)
    assert (first.id, first.title, first.text) == ("a", "A", "first")
    assert first.metadata == {"source": "rows.ndjson", "file_format": "jsonl", "lang": "en"}
    assert (second.id, second.format) == ("rows.ndjson:3", "markdown")


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("empty.md", b"", "the file is empty"),
        ("blank.txt", b" \n\t ", "the file is empty"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00", "not text in a known encoding"),
        ("nul.txt", b"a\x00b", "not text in a known encoding"),
        ("scripts.html", b"<script>x()</script><style>p{}</style>", "text: Value error"),
        ("rows.jsonl", b"\n\n", "the file is empty"),
        ("rows.jsonl", b'{"text": "ok"}\n{"id": "b"}', "line 2: text: Field required"),
        ("rows.jsonl", b'{"text": "ok", "extra": 1}', "line 1: extra: Extra inputs"),
        ("rows.jsonl", b"[1, 2]", "line 1: Input should be"),
        ("rows.jsonl", b"{nope", "line 1: not a JSON object"),
        ("rows.jsonl", b'{"id": "a#1", "text": "x"}', "line 1: id: String should match"),
        ("bad#name.md", b"# Title\n\ntext", "id: String should match"),
    ],
)
def test_unreadable_documents_say_why(name: str, data: bytes, says: str) -> None:
    with pytest.raises(InvalidDocument) as raised:
        parse_file(name, data)
    assert says in str(raised.value) and str(raised.value).startswith(name)


def test_unsupported_types_name_the_accepted_ones() -> None:
    with pytest.raises(UnsupportedMediaType) as raised:
        parse_file("deck.pptx", b"PK")
    assert "'.pptx'" in str(raised.value)
    assert all(t in str(raised.value) for t in (".md", ".txt", ".html", ".jsonl", "text/html"))
    with pytest.raises(UnsupportedMediaType, match="media type 'application/pdf'"):
        parse_file("upload", b"%PDF", "application/pdf")


def test_find_files_walks_folders_for_supported_files(tmp_path: Path) -> None:
    (tmp_path / "docs" / "deep" / "er").mkdir(parents=True)
    (tmp_path / "docs" / ".git").mkdir()
    for name in ("a.md", "deep/b.TXT", "deep/er/c.htm", "deep/d.pdf", ".git/e.md", ".f.md"):
        (tmp_path / "docs" / name).write_text("x")
    (tmp_path / "single.jsonl").write_text("{}")

    found = find_files([tmp_path / "docs", tmp_path / "single.jsonl"])

    assert [name for name, _ in found] == ["a.md", "deep/b.TXT", "deep/er/c.htm", "single.jsonl"]
    with pytest.raises(UnsupportedMediaType):
        find_files([tmp_path / "docs" / "deep" / "d.pdf"])
    with pytest.raises(FileNotFoundError):
        find_files([tmp_path / "missing"])


def test_a_json_lines_row_nested_too_deep_is_refused_before_it_is_parsed() -> None:
    row = b'{"id": "d", "text": "t", "metadata": {"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}"
    with pytest.raises(BodyTooDeep, match="rows.jsonl: line 2 nests 10002 levels"):
        parse_file("rows.jsonl", b'{"text": "fine"}\n' + row)
