"""The payload codec: AES-256-GCM under the current key, any key of the ring decrypts."""

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from keel.encryption import (
    ENCODING,
    KEY_FILE,
    KEY_ID,
    EncryptionCodec,
    create_key_file,
    keyring,
)
from keel.errors import PayloadUndecryptable, UnknownPayloadKey
from keel.payloads import FilePayloadStore, data_converter
from keel.schemas.encryption import PayloadKeyring
from keel.schemas.runs import Outcome
from keel.settings import Settings

SECRET = "jane.doe@example.com"
OFFLOAD = 128 * 1024


def _ring(current: str, *ids: str) -> PayloadKeyring:
    keys = {i: base64.b64encode(os.urandom(32)).decode() for i in ids}
    return PayloadKeyring.model_validate({"current": current, "keys": keys})


def _rotated(ring: PayloadKeyring, new: str) -> PayloadKeyring:
    keys = {i: k.get_secret_value() for i, k in ring.keys.items()}
    keys[new] = base64.b64encode(os.urandom(32)).decode()
    return PayloadKeyring.model_validate({"current": new, "keys": keys})


async def test_a_value_round_trips_and_its_text_is_nowhere_in_the_payload(tmp_path: Path):
    converter = data_converter(
        FilePayloadStore(tmp_path), OFFLOAD, codec=EncryptionCodec(_ring("a", "a"))
    )
    value = Outcome(answer=f"write to {SECRET}", confidence=0.5)
    [payload] = await converter.encode([value])
    assert payload.metadata["encoding"] == ENCODING
    assert payload.metadata[KEY_ID] == b"a"
    assert SECRET.encode() not in payload.SerializeToString()
    assert await converter.decode([payload], [Outcome]) == [value]


async def test_equal_values_encrypt_differently():
    codec = EncryptionCodec(_ring("a", "a"))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"same"')
    first, second = await codec.encode([plain, plain])
    assert first.data != second.data
    assert await codec.decode([first, second]) == [plain, plain]


async def test_payloads_written_before_encryption_pass_through():
    codec = EncryptionCodec(_ring("a", "a"))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(SECRET).encode())
    assert await codec.decode([plain]) == [plain]


async def test_after_rotation_the_new_key_encrypts_and_the_old_one_still_decrypts():
    old = _ring("a", "a")
    [before] = await EncryptionCodec(old).encode([Payload(data=b"before")])
    rotated = EncryptionCodec(_rotated(old, "b"))
    [after] = await rotated.encode([Payload(data=b"after")])
    assert (before.metadata[KEY_ID], after.metadata[KEY_ID]) == (b"a", b"b")
    assert await rotated.decode([before, after]) == [
        Payload(data=b"before"),
        Payload(data=b"after"),
    ]


async def test_a_payload_under_a_key_the_ring_lacks_names_that_key():
    [sealed] = await EncryptionCodec(_ring("old-key", "old-key")).encode([Payload(data=b"x")])
    with pytest.raises(UnknownPayloadKey, match=r"'old-key'.*KEEL_PAYLOAD_KEYRING"):
        await EncryptionCodec(_ring("new", "new")).decode([sealed])


async def test_a_damaged_payload_or_another_key_of_the_same_id_is_refused():
    codec = EncryptionCodec(_ring("a", "a"))
    [sealed] = await codec.encode([Payload(data=b"x")])
    damaged = Payload()
    damaged.CopyFrom(sealed)
    damaged.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(PayloadUndecryptable, match="'a'"):
        await codec.decode([damaged])
    with pytest.raises(PayloadUndecryptable):
        await EncryptionCodec(_ring("a", "a")).decode([sealed])
    damaged.data = sealed.data[:5]
    with pytest.raises(PayloadUndecryptable):
        await codec.decode([damaged])


async def test_failure_messages_are_encrypted_too(tmp_path: Path):
    converter = data_converter(
        FilePayloadStore(tmp_path), OFFLOAD, codec=EncryptionCodec(_ring("a", "a"))
    )
    failure = Failure()
    await converter.encode_failure(ApplicationError(f"no account for {SECRET}"), failure)
    assert SECRET.encode() not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert str(decoded) == f"no account for {SECRET}"


async def test_the_payload_store_keeps_ciphertext(tmp_path: Path):
    converter = data_converter(
        FilePayloadStore(tmp_path), OFFLOAD, codec=EncryptionCodec(_ring("a", "a"))
    )
    value = Outcome(answer=SECRET * (OFFLOAD // len(SECRET) + 1), confidence=0.5)
    [reference] = await converter.encode([value])
    assert reference.ByteSize() < 1024
    [stored] = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert stored.stat().st_size > OFFLOAD
    assert SECRET.encode() not in stored.read_bytes()
    assert await converter.decode([reference], [Outcome]) == [value]


def test_a_keyring_refuses_short_keys_and_a_current_it_lacks_without_echoing_keys():
    short = base64.b64encode(b"k" * 16).decode()
    with pytest.raises(ValidationError, match="'a' is not base64 of 32 bytes") as err:
        PayloadKeyring.model_validate({"current": "a", "keys": {"a": short}})
    assert short not in str(err.value)
    with pytest.raises(ValidationError, match="'b' is not among the keys"):
        _ring("b", "a")


@pytest.mark.usefixtures("clean_env")
def test_the_key_file_is_written_once_private_and_read_when_settings_have_no_keyring(
    tmp_path: Path,
):
    path = tmp_path / KEY_FILE
    assert create_key_file(path)
    first = path.read_bytes()
    assert not create_key_file(path)
    assert path.read_bytes() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]

    from_file = keyring(Settings(data_dir=tmp_path))
    assert from_file is not None and from_file.current in from_file.keys
    configured = _ring("x", "x")
    assert keyring(Settings(data_dir=tmp_path, payload_keyring=configured)) == configured
    assert keyring(Settings(data_dir=tmp_path / "none")) is None
