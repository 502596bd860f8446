"""Counting JSON nesting without parsing (`keel.json_depth`)."""

import json

import pytest

from keel.errors import BodyTooDeep
from keel.json_depth import MAX_JSON_DEPTH, check_depth, json_depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("", 0),
        ("42", 0),
        ('"[[[{{{"', 0),
        ('{"a": [1]}', 2),
        ('[[], [[]], {"b": {}}]', 3),
        (r'{"a": "\"[[[\\", "b": [[["]"]]]}', 4),
        ("[" * 10_000, 10_000),  # unclosed: counted all the same
    ],
)
def test_depth_counts_brackets_outside_strings(text: str, depth: int) -> None:
    assert json_depth(text.encode()) == depth


def test_depth_agrees_with_a_parser_on_every_level() -> None:
    value: object = "leaf"
    for level in range(1, 70):
        value = [value] if level % 2 else {"k": value, "s": "}]"}
        assert json_depth(json.dumps(value).encode()) == level


def test_the_limit_itself_passes_and_one_more_is_refused() -> None:
    check_depth(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    with pytest.raises(BodyTooDeep, match=f"rows.jsonl: line 3 nests {MAX_JSON_DEPTH + 1}"):
        check_depth(b"[" * (MAX_JSON_DEPTH + 1), "rows.jsonl: line 3")
