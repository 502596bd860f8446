"""How deep a JSON text nests, counted without parsing it.

Parsers recurse (Python's `json`) or stop at a depth of their own (pydantic's, at 200 with
its own error), so a body nested thousands deep is refused here first, with one error
wherever it arrives: a request body (`api/limits.py`) or a JSON Lines row
(`keel.documents`). Strings are cut out, every byte but brackets deleted, and the
brackets' running sum taken, all in C loops: a few milliseconds for a megabyte of ordinary
JSON, some tens for a megabyte of brackets.
"""

import re
from array import array
from itertools import accumulate

from keel.errors import BodyTooDeep

__all__ = ["MAX_JSON_DEPTH", "check_depth", "json_depth"]

MAX_JSON_DEPTH = 64
"""The deepest nesting of objects and arrays Keel reads (`{"a": [1]}` is 2 deep)."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
"""Opening brackets as +1, closing ones as -1 (a signed byte)."""


def json_depth(data: bytes) -> int:
    """The deepest nesting in `data`; for text that is not JSON, a bound of no meaning."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS).translate(_STEPS)
    return max(accumulate(array("b", brackets)), default=0)


def check_depth(data: bytes, what: str = "the request body") -> None:
    """Raise `BodyTooDeep` when `data` (`what`, for the message) nests past the limit."""
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise BodyTooDeep(
            f"{what} nests {depth} levels deep; JSON is read at most {MAX_JSON_DEPTH} deep"
        )
