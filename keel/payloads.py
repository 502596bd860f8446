"""Large payloads live outside Temporal's history; the history keeps a small reference.

Temporal refuses a payload over 2 MB and warns from 256 KB, and every payload of a run
stays in its history. So Keel's data converter is `pydantic_data_converter` plus the SDK's
external storage (`temporalio.converter.ExternalStorage`): a payload of at least
`KEEL_PAYLOAD_OFFLOAD_BYTES` (128 KiB by default) is written to a payload store, and the
history holds a reference (`json/protobuf`, `ExternalStorageReference`: the store's name
and the payload's SHA-256) in its place. Every client and worker reads it back before
decoding, so workflows, activities, the API and the CLI see the value itself. Smaller
payloads stay in the history: the Temporal UI shows them as they are (plain JSON, or
ciphertext its codec server decodes), and a large one as its reference.

With a payload codec (`keel.encryption`), Temporal's SDK applies the codec first and the
store second: what the store keeps is the encrypted payload, and only the reference (the
store's name, a digest, a size) is in clear in the history.

The store is a `StorageDriver`, the SDK's object-storage interface (`store` a batch of
payloads, get one claim each; `retrieve` them by claim). `FilePayloadStore` keeps them
in a directory (`KEEL_PAYLOAD_DIR`, `<data dir>/payloads` by default) that every worker
and the API share: a volume in docker-compose. Files are content-addressed (the name is
the SHA-256 of the serialised payload), written once, atomically (a temporary file
renamed into place), and checked against their name when read. Another backend is any
`StorageDriver`, such as the SDK's `temporalio.contrib.aws.s3driver.S3StorageDriver`,
passed to `data_converter`.
"""

import asyncio
import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    ExternalStorage,
    PayloadCodec,
    StorageDriver,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)

from keel.errors import PayloadMissing

__all__ = ["FilePayloadStore", "data_converter"]

_CLAIM_KEY = "sha256"


class FilePayloadStore(StorageDriver):
    """Payloads as content-addressed files under one directory.

    Args:
        root: The directory; created on the first write.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def name(self) -> str:
        """The name references carry; a reader must register a store of the same name."""
        return "keel-files"

    def type(self) -> str:
        """The store's kind."""
        return "keel.FilePayloadStore"

    def path(self, digest: str) -> Path:
        """Where the payload with SHA-256 `digest` lives."""
        return self.root / digest[:2] / digest

    async def store(
        self, context: StorageDriverStoreContext, payloads: Sequence[Payload]
    ) -> list[StorageDriverClaim]:
        """Write each payload (once: equal payloads share a file) and claim it by digest."""
        blobs = [payload.SerializeToString(deterministic=True) for payload in payloads]
        return list(await asyncio.gather(*(asyncio.to_thread(self._write, b) for b in blobs)))

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        """The payloads the claims name.

        Raises:
            PayloadMissing: A payload is not in the store, or its bytes do not match its name.
        """
        return list(await asyncio.gather(*(asyncio.to_thread(self._read, c) for c in claims)))

    def _write(self, blob: bytes) -> StorageDriverClaim:
        digest = hashlib.sha256(blob).hexdigest()
        target = self.path(digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{digest[:8]}-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(blob)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, target)  # readers see the whole file or none
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return StorageDriverClaim(claim_data={_CLAIM_KEY: digest, "bytes": str(len(blob))})

    def _read(self, claim: StorageDriverClaim) -> Payload:
        digest = claim.claim_data.get(_CLAIM_KEY, "")
        target = self.path(digest) if len(digest) == 64 else self.root / "?"
        try:
            blob = target.read_bytes()
        except FileNotFoundError:
            raise PayloadMissing(
                f"payload sha256:{digest} is not in the payload store {self.root} "
                "(KEEL_PAYLOAD_DIR): every worker and the API must share that directory"
            ) from None
        if hashlib.sha256(blob).hexdigest() != digest:
            raise PayloadMissing(f"payload sha256:{digest} in {self.root} is damaged")
        payload = Payload()
        payload.ParseFromString(blob)
        return payload


def data_converter(
    store: StorageDriver,
    offload_bytes: int,
    base: DataConverter = pydantic_data_converter,
    codec: PayloadCodec | None = None,
) -> DataConverter:
    """`base` (pydantic) with payloads of at least `offload_bytes` kept in `store`.

    With `codec`, every payload goes through it, and so do failures' messages and stack
    traces (Temporal keeps those in clear otherwise).
    """
    storage = ExternalStorage(drivers=[store], payload_size_threshold=offload_bytes)
    if codec is None:
        return dataclasses.replace(base, external_storage=storage)
    return dataclasses.replace(
        base,
        external_storage=storage,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
