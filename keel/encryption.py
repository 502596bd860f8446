"""Payload encryption: a Temporal payload codec with AES-256-GCM, and where its keys come from.

Every payload a Keel client or worker sends to Temporal (workflow and activity inputs and
results, Update arguments, memos, the summaries of workflows, activities and timers, failure
messages) is serialised and encrypted whole, so Temporal's history, its UI and the payload
store hold only their ciphertext. An encrypted payload is

    metadata: {encoding: binary/encrypted, encryption-key-id: <id>}
    data:     12-byte nonce + AES-256-GCM(serialised payload), the key id as associated data

Decoding takes the key the payload names from the keyring, so several keys may be in use at
once: rotation adds a key and makes it current, and what older keys encrypted stays
readable. A payload without the encrypted encoding passes through, so histories recorded
before encryption was turned on still replay.

The keyring is `KEEL_PAYLOAD_KEYRING` (settings or `keel.toml`) or, when that is unset, the
key file `<data dir>/payload-keys.json`, which `keel up` writes (mode 0600) on its first
start. Without either, payloads are not encrypted.
"""

import base64
import json
import os
import secrets
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from keel.errors import PayloadUndecryptable, UnknownPayloadKey
from keel.schemas.encryption import KEY_BYTES, PayloadKeyring
from keel.settings import Settings

__all__ = [
    "ENCODING",
    "KEY_FILE",
    "KEY_ID",
    "EncryptionCodec",
    "create_key_file",
    "keyring",
]

ENCODING = b"binary/encrypted"
"""The `encoding` of an encrypted payload."""

KEY_ID = "encryption-key-id"
"""The metadata field naming the key that encrypted a payload."""

KEY_FILE = "payload-keys.json"
"""The key file's name in the data directory."""

_NONCE_BYTES = 12


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM on whole payloads, under the keyring's current key (module docstring).

    Args:
        keyring: The keys; `current` encrypts.
    """

    def __init__(self, keyring: PayloadKeyring) -> None:
        self.key_id = keyring.current
        self._keyring = keyring
        self._ciphers: dict[str, AESGCM] = {}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Each payload, encrypted under the current key."""
        cipher = self._cipher(self.key_id)
        key_id = self.key_id.encode()
        encoded: list[Payload] = []
        for payload in payloads:
            nonce = os.urandom(_NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(deterministic=True), key_id)
            encoded.append(
                Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed)
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Each payload decrypted with the key it names; unencrypted ones as they are.

        Raises:
            UnknownPayloadKey: A payload names a key the keyring does not have.
            PayloadUndecryptable: A payload does not open with its key (damaged or wrong key).
        """
        return [self._open(payload) for payload in payloads]

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        data = payload.data
        try:
            plain = self._cipher(key_id).decrypt(
                data[:_NONCE_BYTES], data[_NONCE_BYTES:], key_id.encode()
            )
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce
            raise PayloadUndecryptable(
                f"a payload encrypted under key {key_id!r} does not decrypt with that key: "
                "it is damaged, or the keyring's key of that id is not the one that wrote it"
            ) from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded

    def _cipher(self, key_id: str) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            key = self._keyring.key(key_id)
            if key is None:
                raise UnknownPayloadKey(
                    f"a payload is encrypted under key {key_id!r}, which is not in this "
                    f"process's payload keyring ({', '.join(sorted(self._keyring.keys))}): add "
                    "it to KEEL_PAYLOAD_KEYRING (or the key file) of every worker and the API"
                )
            cipher = self._ciphers[key_id] = AESGCM(key)
        return cipher


def keyring(settings: Settings) -> PayloadKeyring | None:
    """The keyring of `settings`, else of the data directory's key file; None without both."""
    if settings.payload_keyring is not None:
        return settings.payload_keyring
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        return None
    return PayloadKeyring.model_validate_json(path.read_bytes())


def create_key_file(path: Path) -> bool:
    """Write a keyring of one new random key to `path` (mode 0600) unless a file is there.

    Returns:
        Whether this call created it.
    """
    key_id = datetime.now(UTC).strftime("k%Y%m%d")
    content = {
        "current": key_id,
        "keys": {key_id: base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_FILE}-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(content, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        # A hard link never replaces a file: two starts at once never both win, and an
        # existing keyring is never overwritten; nor does a crash leave half a file.
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(temporary)
    return True
