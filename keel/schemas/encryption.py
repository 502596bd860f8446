"""The keys that encrypt Temporal payloads: a keyring, as settings and the key file hold it."""

import base64
import binascii
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

__all__ = ["KEY_BYTES", "KeyId", "PayloadKeyring"]

KEY_BYTES = 32
"""AES-256: a key is 32 bytes."""

KeyId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
"""A key's name, written into every payload it encrypts (so never a secret)."""


class PayloadKeyring(BaseModel):
    """AES-256-GCM keys by id: `current` encrypts new payloads, every key decrypts.

    Rotation: add a new key and make it `current`; keep the old ones as long as any history
    (or payload-store file) written under them may still be read.
    """

    # Frozen; and an error never echoes what it was given, which holds keys.
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    current: KeyId = Field(description="The id of the key that encrypts new payloads.")
    keys: dict[KeyId, SecretStr] = Field(
        min_length=1, description="Each key, base64 of 32 random bytes (`openssl rand -base64 32`)."
    )

    @field_validator("keys")
    @classmethod
    def _keys_are_aes_256(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_id, key in keys.items():
            if len(_decoded(key)) != KEY_BYTES:
                # Never the key itself in the message: only which one is wrong.
                raise ValueError(f"payload key {key_id!r} is not base64 of {KEY_BYTES} bytes")
        return keys

    @model_validator(mode="after")
    def _current_is_a_key(self) -> Self:
        if self.current not in self.keys:
            raise ValueError(
                f"the current payload key {self.current!r} is not among the keys "
                f"({', '.join(sorted(self.keys))})"
            )
        return self

    def key(self, key_id: str) -> bytes | None:
        """The key named `key_id`, if the keyring has it."""
        secret = self.keys.get(key_id)
        return None if secret is None else _decoded(secret)


def _decoded(key: SecretStr) -> bytes:
    try:
        return base64.b64decode(key.get_secret_value(), validate=True)
    except binascii.Error:
        return b""
