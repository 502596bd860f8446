"""`Ingester`: idempotent ingestion — documents written into a collection, or deleted.

Writing a batch has two phases. The plan reads what is stored, decides per document
(unchanged: same id and content; duplicate: same content as another document, not indexed
twice; else indexed), chunks and flags the text and gets vectors (from the embedding cache
when it has them). The commit then replaces the documents' rows in one transaction that
starts with its writes, and moves the collection's `version` on. A document is never half
indexed, and running the same batch again changes nothing.

A duplicate points at the document it copies. When that document changes or goes, its
first duplicate is indexed in its place and the others point at it.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import delete, func, or_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.retrieval_tables import ChunkRow, CollectionRow, DocumentRow, collection_spec
from keel.schemas.retrieval import CollectionSpec, DeleteResult, DocumentIn, UpsertResult
from tools.retrieval.chunking import chunk_document
from tools.retrieval.collection_store import CollectionStore, utc_now
from tools.retrieval.embedders import content_hash
from tools.retrieval.embeddings import Embeddings, embedded_text
from tools.retrieval.errors import invalid_document, invalid_search
from tools.retrieval.injection import injection_flags
from tools.retrieval.vectors import VectorBackend

__all__ = ["Ingester"]


@dataclass
class _Planned:
    """A document row to (re)write, with its chunks and their vectors."""

    document: DocumentRow
    chunks: list[ChunkRow] = field(default_factory=list)
    vectors: np.ndarray | None = None


def _document_hash(document: DocumentIn) -> str:
    return content_hash(f"{document.format}\n{document.title}\n{document.text}")


class Ingester:
    """Writes documents into collections, and deletes them.

    Args:
        sessions: The SQL database.
        collections: The collections' rows.
        embeddings: The chunks' vectors.
        vectors: Where vectors live.

    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        collections: CollectionStore,
        embeddings: Embeddings,
        vectors: VectorBackend,
    ) -> None:
        self._sessions = sessions
        self._collections = collections
        self._embeddings = embeddings
        self._vectors = vectors

    async def upsert(self, collection: str, documents: Sequence[DocumentIn]) -> UpsertResult:
        """Index documents: new and changed ones replace their chunks, others are skipped.

        Raises:
            ApplicationError: `UnknownCollection`; `InvalidDocument` (nothing is written).

        """
        _validate(documents)
        async with self._sessions() as session:
            row = await self._collections.row(session, collection)
            spec = collection_spec(row)
            ids = [d.id for d in documents]
            hashes = {d.id: _document_hash(d) for d in documents}
            stored = (
                await session.exec(
                    select(DocumentRow).where(
                        DocumentRow.collection_uid == row.uid,
                        or_(
                            col(DocumentRow.id).in_(ids),
                            col(DocumentRow.content_hash).in_(set(hashes.values())),
                        ),
                    )
                )
            ).all()
        by_id = {d.id: d for d in stored}
        originals = {
            d.content_hash: d.id
            for d in sorted(stored, key=lambda d: d.id)
            if d.duplicate_of is None and d.id not in hashes
        }
        result = UpsertResult()
        planned: list[_Planned] = []
        indexed_at = utc_now()
        for document in documents:
            old = by_id.get(document.id)
            digest = hashes[document.id]
            if (
                old is not None
                and old.content_hash == digest
                and old.doc_metadata == document.metadata
            ):
                result.unchanged.append(document.id)
                continue
            original = originals.get(digest)
            new_row = DocumentRow(
                collection_uid=row.uid,
                id=document.id,
                title=document.title,
                text=document.text,
                format=document.format,
                doc_metadata=document.metadata,
                content_hash=digest,
                duplicate_of=original,
                indexed_at=indexed_at,
            )
            if original is not None:
                result.duplicates[document.id] = original
                planned.append(_Planned(new_row))
                continue
            originals[digest] = document.id
            planned.append(self._chunked(new_row, spec, document))
            result.indexed.append(document.id)
        changed = [p.document.id for p in planned]
        if not changed:
            result.version = row.version
            return result
        lost = [i for i in changed if i in by_id and by_id[i].duplicate_of is None]
        promoted, repoint = await self._orphans(row, spec, lost, originals, exclude=set(changed))
        planned += promoted
        await self._embed(row, spec, planned)
        result.chunks = sum(len(p.chunks) for p in planned)
        result.version = await self._commit(row, [], planned, repoint)
        return result

    async def delete_documents(self, collection: str, ids: Sequence[str]) -> DeleteResult:
        """Delete documents and their chunks; their duplicates take their place.

        Raises:
            ApplicationError: `UnknownCollection`.

        """
        wanted = list(dict.fromkeys(ids))
        async with self._sessions() as session:
            row = await self._collections.row(session, collection)
            spec = collection_spec(row)
            stored = (
                await session.exec(
                    select(DocumentRow).where(
                        DocumentRow.collection_uid == row.uid,
                        col(DocumentRow.id).in_(wanted),
                    )
                )
            ).all()
        found = {d.id: d for d in stored}
        result = DeleteResult(
            deleted=[i for i in wanted if i in found], missing=[i for i in wanted if i not in found]
        )
        if not result.deleted:
            result.version = row.version
            return result
        lost = [d.id for d in stored if d.duplicate_of is None]
        promoted, repoint = await self._orphans(row, spec, lost, {}, exclude=set(wanted))
        await self._embed(row, spec, promoted)
        result.version = await self._commit(row, result.deleted, promoted, repoint)
        return result

    @staticmethod
    def _chunked(document: DocumentRow, spec: CollectionSpec, given: DocumentIn) -> _Planned:
        chunks = chunk_document(given, spec.chunking)
        if not chunks:
            raise invalid_document(given.id, "no text to index")
        return _Planned(
            document,
            [
                ChunkRow(
                    collection_uid=document.collection_uid,
                    id=chunk.id,
                    document_id=document.id,
                    seq=chunk.seq,
                    title=chunk.title,
                    text=chunk.text,
                    chunk_metadata=document.doc_metadata,
                    flags=injection_flags(f"{chunk.title}\n{chunk.text}"),
                    content_hash=content_hash(embedded_text(chunk.title, chunk.text)),
                )
                for chunk in chunks
            ],
        )

    async def _orphans(
        self,
        row: CollectionRow,
        spec: CollectionSpec,
        lost: list[str],
        originals: dict[str, str],
        *,
        exclude: set[str],
    ) -> tuple[list[_Planned], dict[str, str]]:
        """Duplicates of documents that stop being originals: promote one, repoint the rest."""
        if not lost:
            return [], {}
        async with self._sessions() as session:
            orphans = (
                await session.exec(
                    select(DocumentRow)
                    .where(
                        DocumentRow.collection_uid == row.uid,
                        col(DocumentRow.duplicate_of).in_(lost),
                    )
                    .order_by(col(DocumentRow.id))
                )
            ).all()
        promoted: list[_Planned] = []
        repoint: dict[str, str] = {}
        for orphan in orphans:
            if orphan.id in exclude:
                continue
            heir = originals.get(orphan.content_hash)
            if heir is not None:
                repoint[orphan.id] = heir
                continue
            originals[orphan.content_hash] = orphan.id
            given = DocumentIn(
                id=orphan.id,
                title=orphan.title,
                text=orphan.text,
                format=orphan.format,
                metadata=orphan.doc_metadata,
            )
            fresh = DocumentRow.model_validate(
                {**orphan.model_dump(), "duplicate_of": None, "indexed_at": utc_now()}
            )
            promoted.append(self._chunked(fresh, spec, given))
        return promoted, repoint

    async def _embed(
        self, row: CollectionRow, spec: CollectionSpec, planned: list[_Planned]
    ) -> None:
        """Vectors for the planned chunks (only a PostgreSQL backend stores them now)."""
        if spec.embedding is None:
            return
        chunks = [c for p in planned for c in p.chunks]
        if not chunks:
            return
        matrix = await self._embeddings.chunk_vectors(
            spec.embedding, chunks, [c.content_hash for c in chunks]
        )
        if row.dimensions is not None and matrix.shape[1] != row.dimensions:
            raise invalid_search(
                f"embedding {spec.embedding!r} now returns {matrix.shape[1]} dimensions; "
                f"collection {row.name!r} has {row.dimensions}"
            )
        start = 0
        for item in planned:
            item.vectors = matrix[start : start + len(item.chunks)]
            start += len(item.chunks)

    async def _commit(
        self,
        row: CollectionRow,
        removed: list[str],
        planned: list[_Planned],
        repoint: dict[str, str],
    ) -> int:
        """Write one change set in one transaction; return the collection's new version."""
        gone = removed + [p.document.id for p in planned]
        dimensions = next(
            (p.vectors.shape[1] for p in planned if p.vectors is not None and len(p.vectors)),
            None,
        )
        async with self._sessions() as session:
            await self._vectors.delete_documents(session, row.uid, gone)
            for start in range(0, len(gone), 500):
                part = gone[start : start + 500]
                await session.execute(
                    delete(ChunkRow).where(
                        col(ChunkRow.collection_uid) == row.uid,
                        col(ChunkRow.document_id).in_(part),
                    )
                )
                await session.execute(
                    delete(DocumentRow).where(
                        col(DocumentRow.collection_uid) == row.uid,
                        col(DocumentRow.id).in_(part),
                    )
                )
            for item in planned:
                session.add(item.document)
                session.add_all(item.chunks)
            await session.flush()
            for item in planned:
                if item.vectors is not None and len(item.chunks):
                    await self._vectors.write(
                        session, row.uid, [c.id for c in item.chunks], item.vectors
                    )
            for document_id, heir in repoint.items():
                await session.execute(
                    update(DocumentRow)
                    .where(
                        col(DocumentRow.collection_uid) == row.uid,
                        col(DocumentRow.id) == document_id,
                    )
                    .values(duplicate_of=heir)
                )
            changes: dict[str, object] = {
                "version": CollectionRow.version + 1,
                "updated_at": utc_now(),
            }
            if dimensions is not None:
                changes["dimensions"] = func.coalesce(CollectionRow.dimensions, dimensions)
            await session.execute(
                update(CollectionRow).where(col(CollectionRow.uid) == row.uid).values(**changes)
            )
            version = (
                await session.exec(
                    select(CollectionRow.version).where(CollectionRow.uid == row.uid)
                )
            ).one()
            await session.commit()
        self._collections.forget(row.name)
        return version


def _validate(documents: Sequence[DocumentIn]) -> None:
    seen: set[str] = set()
    for document in documents:
        if document.id in seen:
            raise invalid_document(document.id, "given twice in one batch")
        seen.add(document.id)
