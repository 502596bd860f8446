"""`keel ingest`, `keel collections` and `keel search`: retrieval from the command line.

`keel ingest COLLECTION PATH…` reads every supported file under the paths
(`keel.documents`), creates the collection if it is new, and sends the documents to the
API as one ingestion: batches small enough for the API's body limit are staged with
``final=false``, the last starts the ingestion workflow, and the command follows its
progress (a bar on a terminal, a line per step otherwise, JSON lines with ``--json``).

The ingestion id is derived from the collection and the documents, so running the same
command again after Ctrl-C, a lost connection or a crash picks up the same ingestion:
staging resumes, a running ingestion is followed, and the workflow itself never stopped.
Once that ingestion has ended, the same command starts a new one (which finds every
document unchanged, or re-indexes what changed since).
"""

import hashlib
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

from keel.documents import find_files, parse_file, unreadable
from keel.schemas.collections import TERMINAL_INGESTION_STATUSES
from keel.schemas.retrieval import LOCAL_EMBEDDING, DocumentIn

__all__ = [
    "Api",
    "ProgressPrinter",
    "batches",
    "ingest",
    "ingestion_id_of",
    "print_collections",
    "print_search",
]

_POLL_S = 0.3


class Api(Protocol):
    """What these commands need of the CLI's API client."""

    def call(self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        """The JSON answer; None for a 404 when `missing_ok`; raises on any other error."""
        ...


def ingest(
    api: Api,
    collection: str,
    paths: Sequence[Path],
    *,
    max_request_bytes: int,
    printer: "ProgressPrinter",
    embedding: str | None = LOCAL_EMBEDDING,
) -> dict[str, Any]:
    """Ingest the files under `paths` into `collection`; the ingestion once it ended.

    A new collection is created with `embedding` (None: BM25 only); an existing one keeps
    its own.

    Raises:
        keel.errors.InvalidDocument: A file cannot be read as documents, or two give one id.
        keel.errors.BodyTooDeep: A JSON Lines row nests too deep to read.
        FileNotFoundError: A path does not exist, or holds no supported file.

    """
    documents = [
        document
        for name, path in find_files(paths)
        for document in parse_file(name, path.read_bytes())
    ]
    if not documents:
        raise FileNotFoundError(f"no Markdown, text, HTML or JSON Lines file in {_list(paths)}")
    repeated = [i for i, n in Counter(d.id for d in documents).items() if n > 1]
    if repeated:
        raise unreadable(repeated[0], "this document id is given more than once")
    if api.call("GET", f"/v1/collections/{collection}", missing_ok=True) is None:
        api.call("POST", "/v1/collections", json={"name": collection, "embedding": embedding})
        printer.note(f"created collection {collection}")
    base = f"/v1/collections/{collection}"
    ingestion_id = ingestion_id_of(collection, documents)
    view = api.call("GET", f"{base}/ingestions/{ingestion_id}", missing_ok=True)
    if view is not None and view["status"] in TERMINAL_INGESTION_STATUSES:
        ingestion_id, view = uuid.uuid4().hex, None  # that one is over: this is a new one
    if view is not None and view["status"] == "running":
        printer.note(f"following ingestion {ingestion_id}, started earlier")
    if view is None or view["status"] == "staged":
        printer.note(f"sending {len(documents)} document(s) as ingestion {ingestion_id}")
        groups = list(batches(documents, max_request_bytes))
        offset = 0
        for number, group in enumerate(groups, start=1):
            final = number == len(groups)
            view = api.call(
                "POST",
                f"{base}/documents",
                params={"ingestion": ingestion_id, "offset": offset, "final": final, "wait": 0},
                json={"documents": [d.model_dump(mode="json") for d in group]},
            )
            offset += len(group)
            printer.step("sending", offset, len(documents))
    assert view is not None
    try:
        while view["status"] not in TERMINAL_INGESTION_STATUSES:
            printer.step("indexing", view["done"], view["total"], view)
            time.sleep(_POLL_S)
            view = api.call("GET", f"{base}/ingestions/{ingestion_id}")
    except KeyboardInterrupt:
        printer.note(
            f"stopped following ingestion {ingestion_id}, which goes on: run the same command "
            f"to follow it again, or GET {view['url']}"
        )
        raise
    printer.step("indexing", view["done"], view["total"], view)
    printer.done(view)
    return view


def batches(documents: Sequence[DocumentIn], max_bytes: int) -> Iterator[list[DocumentIn]]:
    """`documents` in order, in groups whose JSON stays under `max_bytes` (one at least)."""
    group: list[DocumentIn] = []
    size = 0
    for document in documents:
        weight = len(document.model_dump_json().encode()) + 2
        if group and size + weight > max_bytes:
            yield group
            group, size = [], 0
        group.append(document)
        size += weight
    if group:
        yield group


def ingestion_id_of(collection: str, documents: Sequence[DocumentIn]) -> str:
    """The ingestion id `ingest` first tries for these documents: the same for the same input."""
    digest = hashlib.sha256(collection.encode())
    for document in documents:
        digest.update(document.model_dump_json().encode())
    return digest.hexdigest()[:32]


def _list(paths: Sequence[Path]) -> str:
    return ", ".join(str(p) for p in paths)


class ProgressPrinter:
    """Shows an ingestion's progress: a bar on a terminal, lines or JSON lines otherwise."""

    def __init__(self, out: TextIO, *, as_json: bool, tty: bool | None = None) -> None:
        self._out = out
        self._json = as_json
        self._tty = out.isatty() if tty is None else tty
        self._last: tuple[str, int, int] | None = None

    def note(self, message: str) -> None:
        """A line of commentary (not in JSON mode, where only data is printed)."""
        if not self._json:
            self._clear_bar()
            print(message, file=self._out, flush=True)

    def step(self, phase: str, done: int, total: int, view: dict[str, Any] | None = None) -> None:
        """Progress: `done` of `total` documents sent or indexed."""
        if (phase, done, total) == self._last:
            return
        self._last = (phase, done, total)
        if self._json:
            event = {"phase": phase, "done": done, "total": total}
            print(json.dumps(event | ({"ingestion": view} if view else {})), file=self._out)
        elif self._tty:
            width = 30
            filled = width * done // total if total else width
            bar = "#" * filled + "-" * (width - filled)
            self._out.write(f"\r{phase:<9} [{bar}] {done}/{total} documents")
        else:
            print(f"{phase} {done}/{total} documents", file=self._out)
        self._out.flush()

    def done(self, view: dict[str, Any]) -> None:
        """The ingestion's outcome."""
        if self._json:
            print(json.dumps(view), file=self._out, flush=True)
            return
        self._clear_bar()
        if view["status"] == "completed":
            message = (
                f"{view['collection']}: {view['total']} document(s): {view['indexed']} indexed, "
                f"{view['unchanged']} unchanged, {view['duplicates']} duplicate(s); "
                f"{view['chunks']} chunk(s) written; version {view['version']}"
            )
        else:
            message = f"ingestion {view['id']} {view['status']}: {view.get('error') or ''}"
        print(f"{message}\nui  {view['ui_url']}", file=self._out, flush=True)

    def _clear_bar(self) -> None:
        if self._tty and self._last is not None and not self._json:
            self._out.write("\n")
            self._last = None


def print_collections(listing: dict[str, Any], out: TextIO = sys.stdout) -> None:
    """`keel collections`: one line per collection."""
    for c in listing["collections"]:
        vectors = f"vectors {c['dimensions']}d" if c["has_vectors"] else "bm25 only"
        print(
            f"{c['name']:<24} {c['documents']:>7} docs {c['chunks']:>8} chunks  {vectors:<14} "
            f"v{c['version']}  updated {c['updated_at'][:19]}",
            file=out,
        )
    if not listing["collections"]:
        print("no collections", file=out)


def print_search(result: dict[str, Any], out: TextIO = sys.stdout) -> None:
    """`keel search`: the passages found, best first."""
    print(f"method {result['method']}  (collection version {result['version']})", file=out)
    for p in result["passages"]:
        flags = f"  [{', '.join(p['flags'])}]" if p["flags"] else ""
        text = " ".join(p["text"].split())
        print(f"{p['score']:8.4f}  {p['id']}  {p['title']}{flags}", file=out)
        print(f"          {text[:160]}{'…' if len(text) > 160 else ''}", file=out)
    if not result["passages"]:
        print("no passage matches", file=out)
