"""The API's side of retrieval: the engine's workflows, their failures, and ingestions.

Searching, creating a collection and deleting documents each run one short workflow
(`workflows.retrieval`) and wait for it; a typed failure of the engine comes back with its
catalogued type, which the API's problem handler answers with (unknown collection 404,
invalid document or search 422, conflicting collection 409).

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
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from keel.errors import InvalidDocument, UnknownCollection, UnknownIngestion, caught
from keel.retrieval_tables import CollectionRow, StagedDocumentRow, find_collection
from keel.schemas.collections import IngestionView
from keel.schemas.retrieval import DocumentIn, IngestInput, IngestProgress, IngestResult
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

_TIMEOUT = timedelta(seconds=30)
_QUERY_TIMEOUT = timedelta(seconds=5)

T = TypeVar("T")


async def existing_collection(session: AsyncSession, name: str) -> CollectionRow:
    """The collection named `name`; 404 when there is none."""
    row = await find_collection(session, name)
    if row is None:
        raise UnknownCollection(f"no collection {name!r}")
    return row


async def run_retrieval(
    client: Client,
    settings: Settings,
    run: Callable[[Any, Any], Awaitable[T]],
    arg: Any,
    *,
    kind: str,
) -> T:
    """Run one short retrieval workflow and return its result.

    Args:
        client: The Temporal client.
        settings: Which task queue.
        run: The workflow's run method (e.g. `SearchWorkflow.run`).
        arg: Its input.
        kind: The first word of the workflow id (``search``, ``delete``…).

    Raises:
        WorkflowFailureError: The workflow failed; the problem handler answers with the
            catalogued failure it carries (`TemporalUnavailable` when no worker ran it).

    """
    return await client.execute_workflow(
        run,
        arg,
        id=f"{kind}-{uuid.uuid4().hex}",
        task_queue=settings.task_queue,
        execution_timeout=_TIMEOUT,
    )


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
        InvalidDocument: The staged positions would leave a gap.

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
        raise InvalidDocument(
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
        KeelError: The ingestion failed on the request (a document, a missing collection).

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
            failure = caught(err)
            if failure is not None and failure.status < 500:
                raise failure from err
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
            raise UnknownIngestion(
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
        failure = caught(err)
        error = failure.message if failure is not None else f"failed: {err.cause or err}"
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
