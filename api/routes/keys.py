"""`/v1/keys`: API keys, for admins. The secret is in the answer to a create, and nowhere else."""

from fastapi import APIRouter, status

from api.auth import require
from api.deps import SessionDep
from keel.errors import UnknownKey
from keel.keys import create_key, list_keys, revoke_key
from keel.schemas.keys import KeyCreate, KeyCreated, KeyList, KeyView

__all__ = ["create", "list_all", "revoke", "router"]

router = APIRouter(prefix="/v1/keys", tags=["keys"], dependencies=[require("admin")])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create(body: KeyCreate, session: SessionDep) -> KeyCreated:
    """Create a key; keep `key` now, it is never shown again."""
    row, key = await create_key(session, body.role, body.name, body.principal)
    return KeyCreated(**KeyView.model_validate(row, from_attributes=True).model_dump(), key=key)


@router.get("")
async def list_all(session: SessionDep) -> KeyList:
    """Every key, oldest first, without secrets."""
    rows = await list_keys(session)
    return KeyList(keys=[KeyView.model_validate(row, from_attributes=True) for row in rows])


@router.post("/{key_id}/revoke")
async def revoke(key_id: str, session: SessionDep) -> KeyView:
    """Revoke a key: requests with it get 401 from now on (idempotent)."""
    row = await revoke_key(session, key_id)
    if row is None:
        raise UnknownKey(f"no API key {key_id!r}")
    return KeyView.model_validate(row, from_attributes=True)
