"""A collection's search index at one version: its chunks, BM25, and (embedded) vectors.

Indexes are derived from the chunk table and kept as files under
``<data dir>/retrieval/<collection uid>/v<version>/``: ``chunks.json`` (what a passage
shows and what filters read), the bm25s files, and ``vectors.npy`` when the collection's
vectors live on disk (the embedded backend). A new version is built in a temporary folder
and renamed into place, so a reader never sees half an index; older versions are removed.

`IndexCache` holds one loaded index per collection in memory, per worker process. A search
names the version it found in the database; a cached index of another version is replaced
(loaded from its files when another process built them, else built).
"""

import asyncio
import json
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from tools.retrieval.lexical import LexicalIndex

__all__ = ["CollectionIndex", "IndexCache", "IndexedChunk", "Snapshot", "matches"]


@dataclass(frozen=True)
class IndexedChunk:
    """What a search returns about one chunk."""

    id: str
    document_id: str
    title: str
    text: str
    metadata: dict[str, Any]
    flags: list[str]


@dataclass(frozen=True)
class Snapshot:
    """A collection's chunks at one version, in index order, and their vectors if on disk."""

    version: int
    chunks: list[IndexedChunk]
    vectors: np.ndarray | None


def matches(metadata: dict[str, Any], filters: dict[str, Any]) -> bool:
    """Whether metadata passes every filter: equal, or one of a list; list values contain it."""
    for key, wanted in filters.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        have = metadata.get(key)
        if key not in metadata:
            return False
        if have in options:
            continue
        if isinstance(have, list) and any(option in have for option in options):
            continue
        return False
    return True


class CollectionIndex:
    """The searchable form of a snapshot."""

    def __init__(
        self,
        version: int,
        chunks: list[IndexedChunk],
        lexical: LexicalIndex | None,
        vectors: np.ndarray | None,
    ) -> None:
        self.version = version
        self.chunks = chunks
        self.lexical = lexical
        self.vectors = vectors
        self.positions = {chunk.id: i for i, chunk in enumerate(chunks)}

    @classmethod
    def build(cls, snapshot: Snapshot) -> Self:
        """Index a snapshot (BM25 is built here; vectors are taken as they are)."""
        lexical = None
        if snapshot.chunks:
            lexical = LexicalIndex.build(
                [c.title for c in snapshot.chunks], [c.text for c in snapshot.chunks]
            )
        return cls(snapshot.version, snapshot.chunks, lexical, snapshot.vectors)

    def allowed(self, filters: dict[str, Any]) -> np.ndarray | None:
        """Which chunks pass `filters` (None: every chunk)."""
        if not filters:
            return None
        return np.fromiter(
            (matches(c.metadata, filters) for c in self.chunks), dtype=bool, count=len(self.chunks)
        )

    def save(self, folder: Path) -> None:
        """Write this index's files into `folder` (which must not exist yet)."""
        folder.mkdir(parents=True)
        rows = [c.__dict__ for c in self.chunks]
        (folder / "chunks.json").write_text(json.dumps(rows), encoding="utf-8")
        if self.lexical is not None:
            self.lexical.save(folder)
        if self.vectors is not None:
            np.save(folder / "vectors.npy", self.vectors, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, version: int) -> Self:
        """Read the files `save` wrote."""
        rows = json.loads((folder / "chunks.json").read_text(encoding="utf-8"))
        chunks = [IndexedChunk(**row) for row in rows]
        lexical = LexicalIndex.load(folder, len(chunks)) if chunks else None
        vectors_file = folder / "vectors.npy"
        vectors = np.load(vectors_file, allow_pickle=False) if vectors_file.exists() else None
        return cls(version, chunks, lexical, vectors)


class IndexCache:
    """Loaded indexes by collection uid, one version each, backed by files under `root`."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._loaded: dict[str, CollectionIndex] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(
        self, uid: str, version: int, snapshot: Callable[[], Awaitable[Snapshot]]
    ) -> CollectionIndex:
        """The index of collection `uid` at `version` or later.

        Args:
            uid: The collection's uid.
            version: The version the caller saw in the database.
            snapshot: Reads the collection's chunks when the index must be built.

        """
        cached = self._loaded.get(uid)
        if cached is not None and cached.version >= version:
            return cached
        async with self._locks.setdefault(uid, asyncio.Lock()):
            cached = self._loaded.get(uid)
            if cached is not None and cached.version >= version:
                return cached
            folder = self._root / uid / f"v{version}"
            index = await asyncio.to_thread(self._load, folder, version)
            if index is None:
                taken = await snapshot()
                index = await asyncio.to_thread(self._build, uid, taken)
            self._loaded[uid] = index
            return index

    def size(self, uid: str, version: int) -> int:
        """Bytes of the files of collection `uid`'s index at `version` (0 if none)."""
        folder = self._root / uid / f"v{version}"
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())

    @staticmethod
    def _load(folder: Path, version: int) -> CollectionIndex | None:
        try:
            return CollectionIndex.load(folder, version)
        except (FileNotFoundError, NotADirectoryError, ValueError, KeyError):
            return None  # not built yet, or removed while we read it: build it

    def _build(self, uid: str, snapshot: Snapshot) -> CollectionIndex:
        index = CollectionIndex.build(snapshot)
        home = self._root / uid
        staging = home / f"tmp-{uuid.uuid4().hex}"
        index.save(staging)
        target = home / f"v{snapshot.version}"
        try:
            staging.rename(target)
        except OSError:  # another process built this version first: theirs is as good
            shutil.rmtree(staging, ignore_errors=True)
        for old in home.iterdir():
            if old.name.startswith("v") and old.name != target.name:
                if int(old.name[1:]) < snapshot.version:
                    shutil.rmtree(old, ignore_errors=True)
        return index
