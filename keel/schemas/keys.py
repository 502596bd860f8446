"""API keys as the REST API and the CLI show them; the secret only once, at creation."""

from datetime import UTC, datetime

from pydantic import BaseModel, Field, field_validator

from keel.keys import PrincipalId, Role

__all__ = ["KeyCreate", "KeyCreated", "KeyList", "KeyView"]


class KeyCreate(BaseModel):
    """`POST /v1/keys`: a new key's role, whose key it is, and a label."""

    role: Role
    name: str = Field(min_length=1, max_length=200, description="A label for the key.")
    principal: PrincipalId | None = Field(
        default=None,
        description="The person or service holding the key: all keys of one principal are "
        "one identity for self-approval and claims. Omitted: a principal of its own, named "
        "by the key's id.",
    )


class KeyView(BaseModel):
    """A key without its secret."""

    id: str
    principal: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None

    @field_validator("created_at", "revoked_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # SQLite hands back naive datetimes; Keel stores UTC.
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


class KeyCreated(KeyView):
    """A key just created: `key` is shown this once and stored only as a hash."""

    key: str


class KeyList(BaseModel):
    """Every key, revoked ones included."""

    keys: list[KeyView]
