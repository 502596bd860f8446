"""`/v1/collections`: collections of documents, their ingestion, and search.

Adding documents stages them and starts an ingestion (`IngestWorkflow`), then waits for
it up to `wait` seconds: a finished ingestion answers 200 with its counts, a longer one 202
with its progress and a `Location` to follow (`GET …/ingestions/{id}`). A request is
checked whole before anything is staged: an unsupported file type is 415, an empty or
undecodable document 422, and neither leaves anything behind.

Large uploads come in several requests that share an ingestion id: each stages its
documents at `offset`, with `final=false`, and the last (`final=true`) starts indexing all
of them as one workflow (this is what `keel ingest` does).
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from api.auth import Principal, require
from api.deps import SessionDep, SettingsDep, TemporalClientDep
from api.problems import problem_responses
from api.retrieval import (
    INGESTION_ID_PATTERN,
    existing_collection,
    ingestion_view,
    run_retrieval,
    stage_documents,
    start_ingestion,
    wait_for_ingestion,
)
from api.uploads import UPLOAD_REQUEST_BODY, read_documents
from keel.errors import (
    CollectionExists,
    IngestionStarted,
    InvalidDocument,
    InvalidRequest,
    InvalidSearch,
    UnknownCollection,
    UnknownDocument,
    UnknownEmbedding,
    UnknownIngestion,
    UnsupportedMediaType,
)
from keel.retrieval_tables import CollectionRow, collection_info, find_collection
from keel.schemas.collections import (
    TERMINAL_INGESTION_STATUSES,
    CollectionList,
    CollectionView,
    IngestionView,
)
from keel.schemas.retrieval import (
    COLLECTION_NAME_PATTERN,
    CollectionSpec,
    DeleteDocuments,
    SearchQuery,
    SearchRequest,
    SearchResult,
)
from keel.settings import Settings
from workflows.retrieval import (
    CreateCollectionWorkflow,
    DeleteDocumentsWorkflow,
    SearchWorkflow,
)

__all__ = [
    "add_documents",
    "create_collection",
    "delete_document",
    "get_collection",
    "get_ingestion",
    "list_collections",
    "router",
    "search_collection",
]

router = APIRouter(prefix="/v1/collections", tags=["collections"])

_Reader = Annotated[Principal, require("submitter", "reviewer", "operator")]
_Writer = Annotated[Principal, require("operator")]
_Name = Annotated[str, Path(pattern=COLLECTION_NAME_PATTERN, description="The collection.")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(CollectionExists, UnknownEmbedding, InvalidRequest),
)
async def create_collection(
    spec: CollectionSpec,
    session: SessionDep,
    client: TemporalClientDep,
    settings: SettingsDep,
    _: _Writer,
) -> CollectionView:
    """Create a collection (409 when one has that name already)."""
    if await find_collection(session, spec.name) is not None:
        raise CollectionExists(f"collection {spec.name!r} exists")
    info = await run_retrieval(client, settings, CreateCollectionWorkflow.run, spec, kind="create")
    return CollectionView(**info.model_dump())


@router.get("")
async def list_collections(session: SessionDep, _: _Reader) -> CollectionList:
    """Every collection, by name, with its counts."""
    rows = await session.exec(select(CollectionRow).order_by(col(CollectionRow.name)))
    return CollectionList(collections=[await _view(session, row) for row in rows.all()])


@router.get("/{collection}", responses=problem_responses(UnknownCollection))
async def get_collection(collection: _Name, session: SessionDep, _: _Reader) -> CollectionView:
    """A collection: configuration, documents, duplicates, chunks, vectors, index size."""
    return await _view(session, await existing_collection(session, collection))


@router.post(
    "/{collection}/documents",
    responses={
        202: {
            "model": IngestionView,
            "description": "Staged, or still indexing: follow `Location`.",
            "headers": {
                "Location": {
                    "description": "The ingestion: `GET` it for its progress.",
                    "schema": {"type": "string"},
                }
            },
        },
        **problem_responses(
            UnknownCollection,
            IngestionStarted,
            UnsupportedMediaType,
            InvalidDocument,
            InvalidRequest,
        ),
    },
    openapi_extra={"requestBody": UPLOAD_REQUEST_BODY},
)
async def add_documents(
    collection: _Name,
    request: Request,
    response: Response,
    session: SessionDep,
    client: TemporalClientDep,
    settings: SettingsDep,
    _: _Writer,
    ingestion: Annotated[
        str | None,
        Query(
            pattern=INGESTION_ID_PATTERN,
            description="Add to this ingestion (an id you choose); default: a new one.",
        ),
    ] = None,
    offset: Annotated[
        int, Query(ge=0, description="Position of the first document in the ingestion.")
    ] = 0,
    final: Annotated[
        bool, Query(description="Start indexing; false: more documents will follow.")
    ] = True,
    wait: Annotated[
        float, Query(ge=0, le=60, description="Seconds to wait for the indexing to end.")
    ] = 10.0,
) -> IngestionView:
    """Add or replace documents (JSON, or Markdown, text, HTML and JSON Lines files).

    A document replaces the one with the same id; content already in the collection under
    another id is counted as a duplicate and not indexed twice.
    """
    await existing_collection(session, collection)
    documents = await read_documents(request)
    ingestion_id = ingestion or uuid.uuid4().hex
    current = None
    if ingestion is not None:  # a retry may find its ingestion started
        current = await _existing(client, settings, session, collection, ingestion)
    if current is not None:
        if not final:
            raise IngestionStarted(
                f"ingestion {ingestion_id!r} has started: it takes no more documents",
            )
        return _answer(response, current)
    total = await stage_documents(session, collection, ingestion_id, offset, documents)
    if not final:
        view = await ingestion_view(client, settings, session, collection, ingestion_id)
        return _answer(response, view)
    await start_ingestion(client, settings, collection, ingestion_id, total)
    view = await wait_for_ingestion(client, settings, session, collection, ingestion_id, wait)
    return _answer(response, view)


@router.get(
    "/{collection}/ingestions/{ingestion_id}",
    responses=problem_responses(UnknownCollection, UnknownIngestion),
)
async def get_ingestion(
    collection: _Name,
    ingestion_id: Annotated[str, Path(pattern=INGESTION_ID_PATTERN)],
    session: SessionDep,
    client: TemporalClientDep,
    settings: SettingsDep,
    _: _Reader,
) -> IngestionView:
    """An ingestion: staged, running (documents done so far), completed or failed."""
    return await ingestion_view(client, settings, session, collection, ingestion_id)


@router.delete(
    "/{collection}/documents/{document_id:path}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(UnknownCollection, UnknownDocument),
)
async def delete_document(
    collection: _Name,
    document_id: str,
    session: SessionDep,
    client: TemporalClientDep,
    settings: SettingsDep,
    _: _Writer,
) -> None:
    """Delete a document and its chunks from the collection and its index."""
    await existing_collection(session, collection)
    result = await run_retrieval(
        client,
        settings,
        DeleteDocumentsWorkflow.run,
        DeleteDocuments(collection=collection, ids=[document_id]),
        kind="delete",
    )
    if document_id in result.missing:
        raise UnknownDocument(
            f"no document {document_id!r} in collection {collection!r}",
        )


@router.post(
    "/{collection}/search",
    responses=problem_responses(UnknownCollection, InvalidSearch, InvalidRequest),
)
async def search_collection(
    collection: _Name,
    body: SearchRequest,
    session: SessionDep,
    client: TemporalClientDep,
    settings: SettingsDep,
    _: _Reader,
) -> SearchResult:
    """The passages that best match a query, as the `retrieval.search` activity finds them."""
    await existing_collection(session, collection)
    query = SearchQuery(**body.model_dump(), collection=collection)
    return await run_retrieval(client, settings, SearchWorkflow.run, query, kind="search")


async def _view(session: AsyncSession, row: CollectionRow) -> CollectionView:
    info = await collection_info(session, row)
    return CollectionView(**info.model_dump())


async def _existing(
    client: Client, settings: Settings, session: AsyncSession, collection: str, ingestion_id: str
) -> IngestionView | None:
    """The ingestion if it has started already (a retried request), else None."""
    try:
        view = await ingestion_view(client, settings, session, collection, ingestion_id)
    except UnknownIngestion:
        return None
    return None if view.status == "staged" else view


def _answer(response: Response, view: IngestionView) -> IngestionView:
    if view.status not in TERMINAL_INGESTION_STATUSES:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = view.url
    return view
