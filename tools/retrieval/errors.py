"""Retrieval's failures, with their messages: kinds of the `keel.errors` catalogue.

Each is non-retryable; the API answers with its problem (unknown collection 404, invalid
document or search 422, conflicting collection 409).
"""

from keel.errors import CollectionExists, InvalidDocument, InvalidSearch, UnknownCollection

__all__ = ["collection_exists", "invalid_document", "invalid_search", "unknown_collection"]


def unknown_collection(name: str) -> UnknownCollection:
    """No collection is called `name`."""
    return UnknownCollection(f"no collection named {name!r}")


def invalid_document(document_id: str, why: str) -> InvalidDocument:
    """Document `document_id` cannot be indexed, because `why`."""
    return InvalidDocument(f"document {document_id!r}: {why}")


def invalid_search(why: str) -> InvalidSearch:
    """A search that cannot run on its collection."""
    return InvalidSearch(why)


def collection_exists(name: str) -> CollectionExists:
    """`name` is taken by a collection configured differently."""
    return CollectionExists(f"collection {name!r} exists with another configuration")
