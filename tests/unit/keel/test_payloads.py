"""Large payloads go to the payload store as references; a damaged or missing one is named."""

import json
from pathlib import Path

import pytest

from keel.errors import PayloadMissing
from keel.payloads import FilePayloadStore, data_converter
from keel.schemas.runs import Outcome

OFFLOAD = 128 * 1024


async def test_a_large_value_is_stored_once_and_read_back(tmp_path: Path):
    store = FilePayloadStore(tmp_path / "payloads")
    converter = data_converter(store, OFFLOAD)
    big = Outcome(answer="x" * (OFFLOAD * 2), confidence=0.5)
    small = Outcome(answer="short", confidence=0.5)

    encoded = await converter.encode([big, small, big])
    # The small value is untouched JSON, as the Temporal UI shows it.
    assert encoded[1].metadata["encoding"] == b"json/plain"
    assert json.loads(encoded[1].data)["answer"] == "short"
    # The large one is a reference, and the two equal values share one file.
    assert encoded[0].metadata["encoding"] == b"json/protobuf"
    assert encoded[0].ByteSize() < 1024
    assert encoded[0] == encoded[2]
    files = [p for p in (tmp_path / "payloads").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].stat().st_size > OFFLOAD * 2

    decoded = await converter.decode(encoded, [Outcome, Outcome, Outcome])
    assert decoded == [big, small, big]


async def test_a_missing_or_damaged_payload_is_a_clear_error(tmp_path: Path):
    store = FilePayloadStore(tmp_path / "payloads")
    converter = data_converter(store, OFFLOAD)
    [reference] = await converter.encode([Outcome(answer="y" * OFFLOAD, confidence=0.1)])
    [stored] = [p for p in (tmp_path / "payloads").rglob("*") if p.is_file()]

    stored.write_bytes(stored.read_bytes()[:-1])
    with pytest.raises(PayloadMissing, match="damaged"):
        await converter.decode([reference], [Outcome])
    stored.unlink()
    with pytest.raises(PayloadMissing, match=r"not in the payload store .*KEEL_PAYLOAD_DIR"):
        await converter.decode([reference], [Outcome])
