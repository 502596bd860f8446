"""`/v1/collections` on the real stack: collections, ingestion of each format, search, errors."""

import asyncio
import uuid
from typing import Any

import httpx
import pytest

PROBLEM = "application/problem+json"


def _name() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


async def _collection(http: httpx.AsyncClient, **spec: Any) -> str:
    """A new collection; BM25 alone unless `spec` says otherwise, so matches are exact sets."""
    name = _name()
    created = await http.post("/v1/collections", json={"name": name, "embedding": None} | spec)
    assert created.status_code == 201, created.text
    return name


async def _search(http: httpx.AsyncClient, name: str, query: str, **extra: Any) -> list[str]:
    found = await http.post(f"/v1/collections/{name}/search", json={"query": query, **extra})
    assert found.status_code == 200, found.text
    return [p["document_id"] for p in found.json()["passages"]]


async def _stats(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    got = await http.get(f"/v1/collections/{name}")
    assert got.status_code == 200, got.text
    return got.json()


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"urn:keel:problem:{code}"
    return body


async def test_create_list_get_and_conflict(http: httpx.AsyncClient) -> None:
    name = await _collection(http)

    again = await http.post("/v1/collections", json={"name": name})
    _problem(again, 409, "collection-exists")
    bad = await http.post("/v1/collections", json={"name": "Not A Name!"})
    _problem(bad, 422, "validation-error")

    listed = (await http.get("/v1/collections")).json()["collections"]
    assert name in [c["name"] for c in listed]
    stats = await _stats(http, name)
    assert (stats["documents"], stats["chunks"], stats["has_vectors"]) == (0, 0, False)
    assert stats["index_bytes"] >= 0 and stats["updated_at"]


async def test_a_new_collection_searches_by_meaning_by_default(http: httpx.AsyncClient) -> None:
    name = _name()
    created = await http.post("/v1/collections", json={"name": name})
    assert created.status_code == 201, created.text
    assert created.json()["embedding"] == "local-minilm"
    docs = [
        {"id": "pets", "text": "Dogs and cats are welcome in the office."},
        {"id": "food", "text": "Lunch is served in the canteen at noon."},
        {"id": "bikes", "text": "Bicycles go in the rack by the north entrance."},
    ]
    ingested = await http.post(f"/v1/collections/{name}/documents", json={"documents": docs})
    assert ingested.json()["status"] == "completed", ingested.text
    stats = await _stats(http, name)
    assert (stats["has_vectors"], stats["dimensions"]) == (True, 384)

    # No word in common with any document: BM25 finds nothing, meaning finds the answer.
    question = "May I bring my puppy to work?"
    found = await http.post(f"/v1/collections/{name}/search", json={"query": question})
    assert found.json()["method"] == "hybrid"
    assert [p["document_id"] for p in found.json()["passages"]][0] == "pets"
    assert await _search(http, name, question, method="bm25") == []


async def test_json_ingestion_replaces_and_dedupes(http: httpx.AsyncClient) -> None:
    name = await _collection(http)
    docs = [
        {"id": "pets", "title": "Pets", "text": "Our office welcomes dogs on Fridays."},
        {"id": "food", "title": "Food", "text": "The canteen serves lasagne on Mondays."},
    ]

    first = await http.post(f"/v1/collections/{name}/documents", json={"documents": docs})
    assert first.status_code == 200, first.text
    view = first.json()
    assert (view["status"], view["total"], view["indexed"]) == ("completed", 2, 0 + 2)
    assert view["chunks"] >= 2 and view["url"].endswith(view["id"])

    # The same documents again: nothing to do.
    again = (await http.post(f"/v1/collections/{name}/documents", json=docs)).json()
    assert (again["indexed"], again["unchanged"]) == (0, 2)

    # One document with a new text replaces the old one's chunks.
    changed = {"id": "pets", "title": "Pets", "text": "Cats are welcome in the office now."}
    replaced = (await http.post(f"/v1/collections/{name}/documents", json=changed)).json()
    assert (replaced["indexed"], replaced["status"]) == (1, "completed")
    assert await _search(http, name, "cats office") == ["pets"]
    assert await _search(http, name, "dogs Fridays") == []

    # The same content under another id is not indexed twice.
    copy = {"id": "food-copy", "title": "Food", "text": docs[1]["text"]}
    duplicate = (await http.post(f"/v1/collections/{name}/documents", json=[copy])).json()
    assert (duplicate["indexed"], duplicate["duplicates"]) == (0, 1)
    assert await _search(http, name, "lasagne canteen") == ["food"]

    stats = await _stats(http, name)
    assert (stats["documents"], stats["duplicates"]) == (3, 1)
    assert stats["chunks"] >= 2 and stats["index_bytes"] > 0 and not stats["has_vectors"]
    assert stats["version"] > 0


async def test_multipart_upload_of_every_format(http: httpx.AsyncClient) -> None:
    name = await _collection(http)
    page = (
        "<html><head><title>Sailing</title><style>.hull{color:teal}</style></head><body>"
        "<h1>Knots</h1><p>A bowline makes a fixed loop.</p>"
        "<script>var trebuchet = 1;</script></body></html>"
    )
    jsonl = (
        '{"id": "stars", "text": "Orion has three belt stars.", "metadata": {"topic": "sky"}}\n'
        "\n"
        '{"text": "Tides follow the moon.", "title": "Tides", "metadata": {"topic": "sea"}}\n'
    )
    markdown = b"# Gardening\n\nTomatoes need sun.\n\n## Water\n\nDaily."
    files = [
        ("files", ("guide.md", markdown, "text/markdown")),
        ("files", ("notes.txt", b"Espresso grinders need calibration.", "text/plain")),
        ("files", ("sailing.html", page.encode(), "text/html")),
        ("files", ("facts.jsonl", jsonl.encode(), "application/octet-stream")),
    ]  # fmt: skip

    uploaded = await http.post(f"/v1/collections/{name}/documents", files=files)

    assert uploaded.status_code == 200, uploaded.text
    assert (uploaded.json()["total"], uploaded.json()["indexed"]) == (5, 5)
    assert await _search(http, name, "tomatoes sun") == ["guide.md"]
    assert await _search(http, name, "espresso calibration") == ["notes.txt"]
    assert await _search(http, name, "bowline loop") == ["sailing.html"]
    assert await _search(http, name, "trebuchet") == []  # scripts are not text
    assert await _search(http, name, "hull teal") == []  # nor are styles
    assert await _search(http, name, "moon") == ["facts.jsonl:3"]
    passages = (
        await http.post(f"/v1/collections/{name}/search", json={"query": "Orion stars"})
    ).json()["passages"]
    assert passages[0]["document_id"] == "stars"
    assert passages[0]["metadata"]["topic"] == "sky"
    filtered = await _search(http, name, "moon tides stars", filters={"topic": "sea"})
    assert filtered == ["facts.jsonl:3"]
    found = await http.post(f"/v1/collections/{name}/search", json={"query": "bowline"})
    assert found.json()["passages"][0]["title"].startswith("Sailing")


@pytest.mark.parametrize(
    ("file", "status", "code", "says"),
    [
        (("slides.pdf", b"%PDF-1.7", "application/pdf"), 415, "unsupported-media-type", ".md"),
        (("blank.txt", b"  \n\t\n", "text/plain"), 422, "invalid-document", "empty"),
        (("latin.txt", b"\xff\xfe\xfa caf\xe9", "text/plain"), 422, "invalid-document", "encoding"),
        (("rows.jsonl", b'{"id": "x"}\n', "application/jsonl"), 422, "invalid-document", "line 1"),
        (
            (
                "deep.jsonl",
                b'{"id": "d", "text": "t"}\n{"id": "e", "text": "t", "metadata": {"a": '
                + b"[" * 10_000,
                "application/jsonl",
            ),
            400,
            "body-too-deep",
            "deep.jsonl: line 2 nests 10002 levels",
        ),
    ],
)
async def test_bad_files_are_refused_and_nothing_is_ingested(
    http: httpx.AsyncClient, file: tuple[str, bytes, str], status: int, code: str, says: str
) -> None:
    name = await _collection(http)
    good = ("good.md", b"# Good\n\nPerfectly fine words.", "text/markdown")

    refused = await http.post(
        f"/v1/collections/{name}/documents", files=[("files", good), ("files", file)]
    )

    assert says in _problem(refused, status, code)["detail"]
    stats = await _stats(http, name)
    assert (stats["documents"], stats["chunks"]) == (0, 0)  # the good file was not kept either
    assert await _search(http, name, "perfectly fine") == []


async def test_bad_requests_are_problems(http: httpx.AsyncClient) -> None:
    name = await _collection(http)
    url = f"/v1/collections/{name}/documents"

    # Nested 10,000 deep: refused before it is parsed, never a RecursionError (500).
    deep = b"[" * 10_000 + b"]" * 10_000
    nested = await http.post(url, content=deep, headers={"content-type": "application/json"})
    assert "nests 10000 levels" in _problem(nested, 400, "body-too-deep")["detail"]
    plain = await http.post(url, content=b"just words", headers={"content-type": "text/plain"})
    assert "multipart/form-data" in _problem(plain, 415, "unsupported-media-type")["detail"]
    empty = await http.post(url, json={"id": "e", "text": "   "})
    assert "the document is empty" in _problem(empty, 422, "invalid-document")["detail"]
    twice = await http.post(url, json=[{"id": "a", "text": "x"}, {"id": "a", "text": "y"}])
    assert "twice" in _problem(twice, 422, "invalid-document")["detail"]
    bad_id = await http.post(url, json={"documents": [{"id": "a#b", "text": "x"}]})
    assert _problem(bad_id, 422, "invalid-document")["errors"][0]["field"] == "documents.0.id"
    search = f"/v1/collections/{name}/search"
    dense = await http.post(search, json={"query": "x", "method": "dense"})
    _problem(dense, 422, "invalid-search")  # no vectors in this collection
    too_many = await http.post(search, json={"query": "x", "k": 1000})
    _problem(too_many, 422, "validation-error")

    missing = _name()
    for response in (
        await http.post(f"/v1/collections/{missing}/search", json={"query": "anything"}),
        await http.post(f"/v1/collections/{missing}/documents", json={"id": "a", "text": "x"}),
        await http.get(f"/v1/collections/{missing}"),
        await http.delete(f"/v1/collections/{missing}/documents/a"),
    ):
        _problem(response, 404, "unknown-collection")
    stats = await _stats(http, name)
    assert stats["documents"] == 0


async def test_delete_a_document(http: httpx.AsyncClient) -> None:
    name = await _collection(http)
    docs = [
        {"id": "guides/volcano.md", "text": "Basalt flows from shield volcanoes."},
        {"id": "glacier", "text": "Glaciers carve valleys."},
    ]
    assert (await http.post(f"/v1/collections/{name}/documents", json=docs)).status_code == 200

    deleted = await http.delete(f"/v1/collections/{name}/documents/guides/volcano.md")

    assert deleted.status_code == 204, deleted.text
    assert await _search(http, name, "basalt volcanoes") == []
    assert await _search(http, name, "glaciers valleys") == ["glacier"]
    assert (await _stats(http, name))["documents"] == 1
    again = await http.delete(f"/v1/collections/{name}/documents/guides/volcano.md")
    _problem(again, 404, "unknown-document")


async def test_an_ingestion_in_several_requests_answers_202_and_is_followed(
    http: httpx.AsyncClient,
) -> None:
    name = await _collection(http)
    url = f"/v1/collections/{name}/documents"
    ingestion = uuid.uuid4().hex
    first = [{"id": f"d{i}", "text": f"Paragraph number {i} about rivers."} for i in range(3)]
    rest = [{"id": f"d{i}", "text": f"Paragraph number {i} about lakes."} for i in range(3, 5)]

    staged = await http.post(url, params={"ingestion": ingestion, "final": False}, json=first)
    assert staged.status_code == 202, staged.text
    assert (staged.json()["status"], staged.json()["total"]) == ("staged", 3)
    assert staged.headers["location"] == f"/v1/collections/{name}/ingestions/{ingestion}"
    gap = await http.post(url, params={"ingestion": ingestion, "offset": 4}, json=rest)
    assert "without gaps" in _problem(gap, 422, "invalid-document")["detail"]

    started = await http.post(
        url, params={"ingestion": ingestion, "offset": 3, "wait": 0}, json=rest
    )
    assert started.status_code in (200, 202), started.text
    assert started.json()["total"] == 5
    view = started.json()
    for _ in range(200):
        if view["status"] == "completed":
            break
        await asyncio.sleep(0.1)
        view = (await http.get(started.json()["url"])).json()
    assert (view["status"], view["done"], view["indexed"]) == ("completed", 5, 5)
    # A retried final request finds the ingestion rather than starting another.
    retried = await http.post(url, params={"ingestion": ingestion, "offset": 3}, json=rest)
    assert retried.json() == view
    late = await http.post(url, params={"ingestion": ingestion, "final": False}, json=first)
    _problem(late, 409, "ingestion-started")
    unknown = await http.get(f"/v1/collections/{name}/ingestions/{uuid.uuid4().hex}")
    _problem(unknown, 404, "unknown-ingestion")
    assert (await _stats(http, name))["documents"] == 5
