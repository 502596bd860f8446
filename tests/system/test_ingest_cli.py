"""`keel ingest`, `keel collections` and `keel search`, run as a user runs them."""

import json
import uuid
from pathlib import Path

import httpx

from cli.ingestion import ingestion_id_of
from keel.documents import find_files, parse_file
from keel.testing.stack import Stack
from tests.system.test_cli import keel


def _folder(root: Path) -> Path:
    docs = root / "docs"
    (docs / "guides").mkdir(parents=True)
    (docs / "guides" / "kayak.md").write_text("# Kayaking\n\nWear a buoyancy aid on rivers.\n")
    (docs / "bread.txt").write_text("Sourdough needs a lively starter.")
    (docs / "kites.html").write_text(
        "<html><head><title>Kites</title></head><body><p>Kites fly in steady wind.</p>"
        "<script>var zeppelin = 1;</script></body></html>"
    )
    (docs / "more.jsonl").write_text('{"id": "tea", "title": "Tea", "text": "Brew at 80 C."}\n')
    (docs / ".drafts").mkdir()
    (docs / ".drafts" / "secret.md").write_text("# Secret\n\nNot for the index.")
    (docs / "slides.pdf").write_bytes(b"%PDF-1.7")
    return docs


async def test_ingest_a_folder_in_batches_then_list_and_search(stack: Stack, tmp_path: Path):
    docs = _folder(tmp_path)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    # A small body limit makes the command send the documents in several requests, staged
    # as one ingestion.
    small = {"KEEL_API_MAX_BODY_BYTES": "1024"}

    done = await keel(stack, "ingest", name, str(docs), env=small)

    assert done.returncode == 0, done.stderr
    assert f"created collection {name}" in done.stdout
    sent = [line for line in done.stdout.splitlines() if line.startswith("sending ")]
    assert len(sent[1:]) > 1 and sent[-1] == "sending 4/4 documents"
    assert "indexing 4/4 documents" in done.stdout
    assert f"{name}: 4 document(s): 4 indexed, 0 unchanged, 0 duplicate(s)" in done.stdout

    again = await keel(stack, "--json", "ingest", name, str(docs))
    assert again.returncode == 0, again.stderr
    events = [json.loads(line) for line in again.stdout.splitlines()]
    assert events[-1]["status"] == "completed"
    assert (events[-1]["indexed"], events[-1]["unchanged"]) == (0, 4)
    assert {e.get("phase") for e in events[:-1]} == {"sending", "indexing"}

    listed = await keel(stack, "collections")
    line = next(line for line in listed.stdout.splitlines() if line.startswith(name))
    assert "4 docs" in line and "vectors 384d" in line

    found = await keel(stack, "search", name, "buoyancy rivers")
    assert found.returncode == 0, found.stderr
    assert "guides/kayak.md#" in found.stdout.splitlines()[1]
    nothing = await keel(stack, "--json", "search", name, "zeppelin secret", "--method", "bm25")
    assert json.loads(nothing.stdout)["passages"] == []

    lexical = f"{name}-bm25"
    alone = await keel(stack, "ingest", lexical, str(docs), "--embedding", "none")
    assert alone.returncode == 0, alone.stderr
    listed = await keel(stack, "collections")
    line = next(line for line in listed.stdout.splitlines() if line.startswith(lexical))
    assert "bm25 only" in line


async def test_ingest_refuses_unsupported_and_missing_files(stack: Stack, tmp_path: Path):
    docs = _folder(tmp_path)
    name = f"cli-{uuid.uuid4().hex[:8]}"

    pdf = await keel(stack, "ingest", name, str(docs / "slides.pdf"))
    assert pdf.returncode == 1
    assert "unsupported file type '.pdf'" in pdf.stderr and ".md" in pdf.stderr
    missing = await keel(stack, "ingest", name, str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
    empty = docs / "empty.txt"
    empty.write_text("\n")
    blank = await keel(stack, "ingest", name, str(empty))
    assert blank.returncode == 1 and "empty.txt: the file is empty" in blank.stderr
    (docs / "again.jsonl").write_text('{"id": "tea", "text": "Steep for three minutes."}\n')
    twice = await keel(stack, "ingest", name, str(docs / "more.jsonl"), str(docs / "again.jsonl"))
    assert twice.returncode == 1 and "tea: this document id is given more than once" in twice.stderr
    (docs / "deep.jsonl").write_text('{"text": "x", "metadata": {"a": ' + "[" * 100 + "\n")
    deep = await keel(stack, "ingest", name, str(docs / "deep.jsonl"))
    assert deep.returncode == 1 and "deep.jsonl: line 1 nests 102 levels" in deep.stderr
    # Nothing was sent: the collection was never created.
    listed = await keel(stack, "collections")
    assert name not in listed.stdout


async def test_ingest_again_after_a_crash_resumes_the_same_ingestion(
    stack: Stack, tmp_path: Path
) -> None:
    docs = _folder(tmp_path)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    documents = [d for n, path in find_files([docs]) for d in parse_file(n, path.read_bytes())]
    ingestion = ingestion_id_of(name, documents)
    # A command that died after sending its first request left this behind:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        assert (await http.post("/v1/collections", json={"name": name})).status_code == 201
        first = [documents[0].model_dump(mode="json")]
        staged = await http.post(
            f"/v1/collections/{name}/documents",
            params={"ingestion": ingestion, "final": False},
            json=first,
        )
        assert staged.json()["status"] == "staged"

    resumed = await keel(stack, "ingest", name, str(docs))

    assert resumed.returncode == 0, resumed.stderr
    assert f"sending 4 document(s) as ingestion {ingestion}" in resumed.stdout
    assert f"{name}: 4 document(s): 4 indexed" in resumed.stdout
