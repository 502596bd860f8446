"""Retrieval's typed failures: non-retryable `ApplicationError`s the API maps to statuses.

```
type                 HTTP  raised for
UnknownCollection    404   no collection has the name
InvalidDocument      422   a document is empty, not text, or repeated in one batch
InvalidSearch        422   dense or hybrid search on a collection without vectors
CollectionExists     409   a collection of that name exists with another configuration
UnknownEmbedding     422   a collection names an embedding model the worker does not have
```
"""

from temporalio.exceptions import ApplicationError

from keel.schemas.retrieval import (
    COLLECTION_EXISTS_ERROR,
    INVALID_DOCUMENT_ERROR,
    INVALID_SEARCH_ERROR,
    UNKNOWN_COLLECTION_ERROR,
)

__all__ = ["collection_exists", "invalid_document", "invalid_search", "unknown_collection"]


def _error(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def unknown_collection(name: str) -> ApplicationError:
    """No collection is called `name`."""
    return _error(f"no collection named {name!r}", UNKNOWN_COLLECTION_ERROR)


def invalid_document(document_id: str, why: str) -> ApplicationError:
    """Document `document_id` cannot be indexed, because `why`."""
    return _error(f"document {document_id!r}: {why}", INVALID_DOCUMENT_ERROR)


def invalid_search(why: str) -> ApplicationError:
    """A search that cannot run on its collection."""
    return _error(why, INVALID_SEARCH_ERROR)


def collection_exists(name: str) -> ApplicationError:
    """`name` is taken by a collection configured differently."""
    return _error(f"collection {name!r} exists with another configuration", COLLECTION_EXISTS_ERROR)
