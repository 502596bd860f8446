"""Documents out of a `POST /v1/collections/{c}/documents` body: JSON or uploaded files.

JSON is ``{"documents": [...]}``, one document object, or a list of them (fields of
`DocumentIn`). A ``multipart/form-data`` body carries files in any field; each is read by
`keel.documents` (Markdown, plain text, HTML, JSON Lines). Everything in the request is
read and checked before anything is kept, so a request is refused whole or taken whole.
"""

from typing import Any, cast

from fastapi import Request
from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json
from starlette.datastructures import UploadFile

from api.problems import field_errors
from keel.documents import ACCEPTED_MEDIA_TYPES, EXTENSIONS, parse_file
from keel.errors import InvalidDocument, InvalidRequest, UnsupportedMediaType
from keel.schemas.collections import DocumentsUpload
from keel.schemas.retrieval import DocumentIn

__all__ = ["UPLOAD_REQUEST_BODY", "read_documents"]

_BODY_TYPES = ("application/json", "multipart/form-data")
_DOCUMENTS = TypeAdapter(DocumentsUpload | list[DocumentIn] | DocumentIn)
_LIST = TypeAdapter(list[DocumentIn])


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its (non-recursive) `$defs` written in place of each `$ref`."""
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            fields = cast(dict[str, Any], node)
            if "$ref" in fields:
                return inline(definitions[fields["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in fields.items()}
        if isinstance(node, list):
            return [inline(value) for value in cast(list[Any], node)]
        return node

    return inline(schema)


UPLOAD_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {"schema": _inlined(_DOCUMENTS.json_schema())},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "files": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "Markdown, plain text, HTML or JSON Lines files "
                        f"({', '.join(EXTENSIONS)}); a file's name is its document id.",
                    }
                },
            }
        },
    },
}
"""The OpenAPI request body of the documents upload (read by hand, so declared by hand)."""


async def read_documents(request: Request) -> list[DocumentIn]:
    """Every document in the request, checked; a problem (415, 422) otherwise."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        documents = _from_json(await request.body())
    elif media_type == "multipart/form-data":
        documents = await _from_files(request)
    else:
        raise UnsupportedMediaType(
            f"unsupported content type {media_type or '(none)'!r}; send "
            f"{' or '.join(_BODY_TYPES)} (files: {', '.join(ACCEPTED_MEDIA_TYPES)})",
        )
    _check(documents)
    return documents


def _from_json(body: bytes) -> list[DocumentIn]:
    try:
        # Nesting was checked before the route ran (`api.limits`).
        value = from_json(body)
    except ValueError as err:
        raise InvalidRequest(f"the body is not JSON: {err}") from err
    # The shape picks the model, so errors name fields of that shape (`documents.0.text`).
    try:
        if isinstance(value, dict) and "documents" in value:
            return DocumentsUpload.model_validate(value).documents
        if isinstance(value, list):
            return _LIST.validate_python(value)
        return [DocumentIn.model_validate(value)]
    except ValidationError as err:
        errors = field_errors(err.errors(include_url=False))
        detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors[:5])
        raise InvalidDocument(detail, errors=errors) from err


async def _from_files(request: Request) -> list[DocumentIn]:
    form = await request.form()
    try:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise InvalidDocument("the form holds no file")
        documents: list[DocumentIn] = []
        for upload in files:
            name = upload.filename or ""
            data = await upload.read()
            documents += parse_file(name, data, upload.content_type)
        return documents
    finally:
        await form.close()


def _check(documents: list[DocumentIn]) -> None:
    """Refuse the request if it has no document or gives one id twice.

    `DocumentIn` itself refuses empty and undecodable texts.
    """
    if not documents:
        raise InvalidDocument("no documents given")
    seen: set[str] = set()
    for document in documents:
        if document.id in seen:
            raise InvalidDocument(
                f"document {document.id!r} is given twice in one request",
            )
        seen.add(document.id)
