"""Small retrieval workflows for the API, which talks only to Temporal and the database.

They search, create and inspect collections, and delete documents.

Each runs one `retrieval.*` activity with `RETRIEVAL_REQUEST_OPTIONS`: typed errors (unknown
collection, invalid document…) fail the workflow at once, with the activity's
`ApplicationError` as the cause, for the API to map to a status.
"""

from typing import TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.schemas.retrieval import (
        COLLECTION_STATS,
        CREATE_COLLECTION,
        DELETE_DOCUMENTS,
        RETRIEVAL_SEARCH,
        CollectionInfo,
        CollectionRef,
        CollectionSpec,
        DeleteDocuments,
        DeleteResult,
        SearchQuery,
        SearchResult,
    )
    from workflows.activity_options import RETRIEVAL_REQUEST_OPTIONS
    from workflows.ingest import IngestWorkflow

__all__ = [
    "RETRIEVAL_WORKFLOWS",
    "CollectionStatsWorkflow",
    "CreateCollectionWorkflow",
    "DeleteDocumentsWorkflow",
    "SearchWorkflow",
]

_Result = TypeVar("_Result")


async def _execute(activity: str, arg: object, result_type: type[_Result]) -> _Result:
    """Run one `retrieval.*` activity with the retrieval timeout and retries."""
    return await workflow.execute_activity(
        activity,
        arg,
        result_type=result_type,
        **RETRIEVAL_REQUEST_OPTIONS.for_activity(),
    )


@workflow.defn
class SearchWorkflow:
    """One `retrieval.search`."""

    @workflow.run
    async def run(self, query: SearchQuery) -> SearchResult:
        """Search a collection."""
        return await _execute(RETRIEVAL_SEARCH, query, SearchResult)


@workflow.defn
class CreateCollectionWorkflow:
    """One `retrieval.create_collection`."""

    @workflow.run
    async def run(self, spec: CollectionSpec) -> CollectionInfo:
        """Create a collection, or find it configured the same."""
        return await _execute(CREATE_COLLECTION, spec, CollectionInfo)


@workflow.defn
class CollectionStatsWorkflow:
    """One `retrieval.stats`."""

    @workflow.run
    async def run(self, ref: CollectionRef) -> CollectionInfo:
        """A collection's configuration and counts."""
        return await _execute(COLLECTION_STATS, ref, CollectionInfo)


@workflow.defn
class DeleteDocumentsWorkflow:
    """One `retrieval.delete_documents`."""

    @workflow.run
    async def run(self, request: DeleteDocuments) -> DeleteResult:
        """Delete documents from a collection."""
        return await _execute(DELETE_DOCUMENTS, request, DeleteResult)


RETRIEVAL_WORKFLOWS = [
    IngestWorkflow,
    SearchWorkflow,
    CreateCollectionWorkflow,
    CollectionStatsWorkflow,
    DeleteDocumentsWorkflow,
]
"""Every retrieval workflow, for a worker to register."""
