"""`IngestWorkflow`: index a collection's staged documents, batch by batch.

Each batch is one `retrieval.ingest_batch` activity (heartbeating, retried on transient
failures). Batches are idempotent, so a worker killed mid-batch costs one retry, and the
finished index is the one an uninterrupted run builds. The `progress` query and the run's
current details show how far it got. A very long ingestion continues as new, carrying its
progress. At the end the index is rebuilt once (`retrieval.refresh`) and the staged
documents are cleared.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.schemas.retrieval import (
        CLEAR_STAGED,
        INGEST_BATCH,
        REFRESH_INDEX,
        CollectionInfo,
        CollectionRef,
        IngestBatch,
        IngestInput,
        IngestProgress,
        IngestResult,
        UpsertResult,
    )
    from workflows.activity_options import (
        CLEAR_STAGED_OPTIONS,
        INGEST_BATCH_OPTIONS,
        REFRESH_INDEX_OPTIONS,
    )

__all__ = ["IngestWorkflow"]


@workflow.defn
class IngestWorkflow:
    """Indexes documents staged under one upload id."""

    def __init__(self) -> None:
        self._progress: IngestProgress | None = None

    @workflow.run
    async def run(self, request: IngestInput) -> IngestResult:
        """Index every staged document, then refresh the index and clear the staging."""
        progress = request.carried or IngestProgress(
            collection=request.collection, total=request.total
        )
        self._show(progress)
        start = request.start
        while start < request.total:
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    request.model_copy(update={"start": start, "carried": progress})
                )
            end = min(start + request.batch_size, request.total)
            done: UpsertResult = await workflow.execute_activity(
                INGEST_BATCH,
                IngestBatch(
                    collection=request.collection,
                    upload_id=request.upload_id,
                    start=start,
                    end=end,
                ),
                result_type=UpsertResult,
                **INGEST_BATCH_OPTIONS.for_activity(summary=f"documents {start}-{end - 1}"),
            )
            progress = progress.model_copy(
                update={
                    "done": end,
                    "indexed": progress.indexed + len(done.indexed),
                    "unchanged": progress.unchanged + len(done.unchanged),
                    "duplicates": progress.duplicates + len(done.duplicates),
                    "chunks": progress.chunks + done.chunks,
                }
            )
            self._show(progress)
            start = end
        info: CollectionInfo = await workflow.execute_activity(
            REFRESH_INDEX,
            CollectionRef(collection=request.collection),
            result_type=CollectionInfo,
            **REFRESH_INDEX_OPTIONS.for_activity(),
        )
        await workflow.execute_activity(
            CLEAR_STAGED, request, **CLEAR_STAGED_OPTIONS.for_activity()
        )
        progress = progress.model_copy(update={"finished": True})
        self._show(progress)
        return IngestResult(**progress.model_dump(), version=info.version)

    @workflow.query
    def progress(self) -> IngestProgress | None:
        """How far the ingestion got."""
        return self._progress

    def _show(self, progress: IngestProgress) -> None:
        self._progress = progress
        state = "done" if progress.finished else "indexing"
        workflow.set_current_details(
            f"**{state}** {progress.done}/{progress.total} documents into "
            f"`{progress.collection}`: {progress.indexed} indexed, {progress.unchanged} "
            f"unchanged, {progress.duplicates} duplicates, {progress.chunks} chunks"
        )
