"""The API's side of retrieval: the engine's workflows, their failures, and ingestions.

Searching, creating a collection and deleting documents each run one short workflow
(`workflows.retrieval`) and wait for it; a typed failure of the engine becomes a problem
(unknown collection 404, invalid document or search 422, conflicting collection 409).

An ingestion is documents staged in the database (`retrieval_staged`, under the upload id
``<collection>:<ingestion id>``) and then indexed in batches by `IngestWorkflow`, whose id
is ``ingest:<collection>:<ingestion id>``. Staging a position twice keeps the last
document, and starting an ingestion twice finds the first, so a client may retry any
request. Its progress is the workflow's `progress` query while it runs, its result after.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.service import RPCError, RPCStatusCode

from api.problems import ErrorCode, ProblemError
from keel.retrieval_tables import CollectionRow, StagedDocumentRow, find_collection
from keel.schemas.collections import IngestionView
from keel.schemas.retrieval import (
    COLLECTION_EXISTS_ERROR,
    INVALID_DOCUMENT_ERROR,
    INVALID_SEARCH_ERROR,
    UNKNOWN_COLLECTION_ERROR,
    UNKNOWN_EMBEDDING_ERROR,
    DocumentIn,
    IngestInput,
    IngestProgress,
    IngestResult,
)
from keel.settings import Settings
from workflows.ingest import IngestWorkflow

__all__ = [
    "INGESTION_ID_PATTERN",
    "existing_collection",
    "ingestion_view",
    "run_retrieval",
    "stage_documents",
    "start_ingestion",
    "wait_for_ingestion",
]

INGESTION_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
"""An ingestion id a client chooses (to add documents to it over several requests)."""

_PROBLEMS: dict[str, tuple[int, ErrorCode]] = {
    UNKNOWN_COLLECTION_ERROR: (404, ErrorCode.UNKNOWN_COLLECTION),
    INVALID_DOCUMENT_ERROR: (422, ErrorCode.INVALID_DOCUMENT),
    INVALID_SEARCH_ERROR: (422, ErrorCode.INVALID_SEARCH),
    UNKNOWN_EMBEDDING_ERROR: (422, ErrorCode.UNKNOWN_EMBEDDING),
    COLLECTION_EXISTS_ERROR: (409, ErrorCode.COLLECTION_EXISTS),
}
_TIMEOUT = timedelta(seconds=30)
_QUERY_TIMEOUT = timedelta(seconds=5)

T = TypeVar("T")


async def existing_collection(session: AsyncSession, name: str) -> CollectionRow:
    """The collection named `name`; 404 when there is none."""
    row = await find_collection(session, name)
    if row is None:
        raise ProblemError(404, ErrorCode.UNKNOWN_COLLECTION, f"no collection {name!r}")
    return row


async def run_retrieval(
    client: Client,
    settings: Settings,
    run: Callable[[Any, Any], Awaitable[T]],
    arg: Any,
    *,
    kind: str,
) -> T:
    """Run one short retrieval workflow and return its result; its failure as a problem.

    Args:
        client: The Temporal client.
        settings: Which task queue.
        run: The workflow's run method (e.g. `SearchWorkflow.run`).
        arg: Its input.
        kind: The first word of the workflow id (``search``, ``delete``…).

    """
    try:
        return await client.execute_workflow(
            run,
            arg,
            id=f"{kind}-{uuid.uuid4().hex}",
            task_queue=settings.task_queue,
            execution_timeout=_TIMEOUT,
        )
    except WorkflowFailureError as err:
        raise _problem(err) from err


def _problem(err: WorkflowFailureError) -> ProblemError:
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.type in _PROBLEMS:
            status, code = _PROBLEMS[cause.type]
            return ProblemError(status, code, cause.message)
        if isinstance(cause, TemporalTimeoutError):
            return ProblemError(
                503,
                ErrorCode.TEMPORAL_UNAVAILABLE,
                f"no worker answered within {_TIMEOUT.total_seconds():.0f} s; is one running?",
                headers={"Retry-After": "1"},
            )
        cause = getattr(cause, "cause", None) or cause.__cause__
    return ProblemError(500, ErrorCode.INTERNAL, f"retrieval failed: {err.cause or err}")


# --- ingestions ---------------------------------------------------------------------------


def _upload_id(collection: str, ingestion_id: str) -> str:
    return f"{collection}:{ingestion_id}"


def _workflow_id(collection: str, ingestion_id: str) -> str:
    return f"ingest:{collection}:{ingestion_id}"


async def stage_documents(
    session: AsyncSession,
    collection: str,
    ingestion_id: str,
    offset: int,
    documents: list[DocumentIn],
) -> int:
    """Stage `documents` at positions ``offset…``, in one transaction.

    Returns:
        How many documents the ingestion has staged in all.

    Raises:
        ProblemError: 422 when the staged positions would leave a gap.

    """
    upload_id = _upload_id(collection, ingestion_id)
    for seq, document in enumerate(documents, start=offset):
        await session.merge(
            StagedDocumentRow(
                upload_id=upload_id, seq=seq, document=document.model_dump(mode="json")
            )
        )
    await session.flush()
    count, last = (
        await session.exec(
            select(func.count(), func.max(StagedDocumentRow.seq)).where(
                col(StagedDocumentRow.upload_id) == upload_id
            )
        )
    ).one()
    # sqlalchemy types MAX as its column; over no rows it is NULL.
    if last is not None and last + 1 != count:  # pyright: ignore[reportUnnecessaryComparison]
        await session.rollback()
        raise ProblemError(
            422,
            ErrorCode.INVALID_DOCUMENT,
            f"ingestion {ingestion_id!r} would have {count} documents at positions 0 to {last}: "
            "send every offset from 0 without gaps",
        )
    await session.commit()
    return count


async def start_ingestion(
    client: Client, settings: Settings, collection: str, ingestion_id: str, total: int
) -> WorkflowHandle[Any, IngestResult]:
    """Start indexing the staged documents (or find the ingestion already started)."""
    workflow_id = _workflow_id(collection, ingestion_id)
    try:
        return await client.start_workflow(
            IngestWorkflow.run,
            IngestInput(
                collection=collection, upload_id=_upload_id(collection, ingestion_id), total=total
            ),
            id=workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            memo={"total": total},
            static_summary=f"ingest {total} document(s) into {collection}",
        )
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle_for(IngestWorkflow.run, workflow_id)


async def wait_for_ingestion(
    client: Client,
    settings: Settings,
    session: AsyncSession,
    collection: str,
    ingestion_id: str,
    wait_s: float,
) -> IngestionView:
    """The ingestion once it ends, or as it stands after `wait_s` seconds.

    Raises:
        ProblemError: The ingestion failed on a document or a missing collection.

    """
    handle = client.get_workflow_handle_for(
        IngestWorkflow.run, _workflow_id(collection, ingestion_id)
    )
    if wait_s > 0:
        try:
            await asyncio.wait_for(handle.result(), timeout=wait_s)
        except TimeoutError:
            pass  # still running: answer with its progress
        except WorkflowFailureError as err:
            problem = _problem(err)
            if problem.problem.status != 500:
                raise problem from err
    return await ingestion_view(client, settings, session, collection, ingestion_id)


async def ingestion_view(
    client: Client,
    settings: Settings,
    session: AsyncSession,
    collection: str,
    ingestion_id: str,
) -> IngestionView:
    """An ingestion as it stands: staged, running (with progress), or ended."""
    workflow_id = _workflow_id(collection, ingestion_id)
    links = {
        "id": ingestion_id,
        "url": f"/v1/collections/{collection}/ingestions/{ingestion_id}",
        "ui_url": settings.run_ui_url(workflow_id),
    }
    handle = client.get_workflow_handle_for(IngestWorkflow.run, workflow_id)
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        staged = await _staged_count(session, collection, ingestion_id)
        if not staged:
            raise ProblemError(
                404,
                ErrorCode.UNKNOWN_INGESTION,
                f"no ingestion {ingestion_id!r} in collection {collection!r}",
            ) from err
        progress = IngestProgress(collection=collection, total=staged)
        return IngestionView.of(progress, status="staged", **links)
    if description.status == WorkflowExecutionStatus.RUNNING:
        progress = await _progress(handle)
        if progress is None:
            progress = await _progress_at_start(description, collection)
        return IngestionView.of(progress, status="running", **links)
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return IngestionView.of(await handle.result(), status="completed", **links)
    progress = await _progress_at_start(description, collection)
    if description.status == WorkflowExecutionStatus.CANCELED:
        return IngestionView.of(progress, status="cancelled", **links)
    try:
        await handle.result()
        error = f"ended as {description.status.name.lower() if description.status else '?'}"
    except WorkflowFailureError as err:
        error = _problem(err).problem.detail
    return IngestionView.of(progress, status="failed", error=error, **links)


async def _progress(handle: WorkflowHandle[Any, IngestResult]) -> IngestProgress | None:
    """The running ingestion's own progress; None when no worker answers."""
    try:
        return await handle.query(IngestWorkflow.progress, rpc_timeout=_QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
        return None


async def _progress_at_start(
    description: WorkflowExecutionDescription, collection: str
) -> IngestProgress:
    """The progress an ingestion started with: its total (kept in its memo), none done."""
    memo = await description.memo()
    return IngestProgress(collection=collection, total=int(memo.get("total", 0)))


async def _staged_count(session: AsyncSession, collection: str, ingestion_id: str) -> int:
    upload_id = _upload_id(collection, ingestion_id)
    return (
        await session.exec(
            select(func.count()).where(col(StagedDocumentRow.upload_id) == upload_id)
        )
    ).one()
