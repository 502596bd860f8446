"""The failure catalogue (`keel.errors`): one declaration per kind, and every kind in use."""

import re
from datetime import timedelta
from functools import cache
from http import HTTPStatus
from pathlib import Path

import pytest
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from keel.errors import (
    PROBLEM_PREFIX,
    KeelError,
    KeelRunError,
    KeelUserError,
    RateLimited,
    ReviewNotPending,
    TemporalUnavailable,
    UnknownCollection,
    catalogue,
    caught,
    kind_of,
    kind_of_problem,
    never_retried,
)
from keel.temporal.plugin import KeelPlugin

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ("api", "cli", "keel", "tools", "workflows", "worker")
KINDS = catalogue()


@cache
def _source() -> str:
    files = (p for folder in SOURCES for p in (ROOT / folder).rglob("*.py"))
    return "\n".join(p.read_text() for p in files if p != ROOT / "keel" / "errors.py")


def test_every_kind_has_its_own_temporal_type_and_problem_type() -> None:
    assert len(KINDS) > 40
    assert len({k.temporal_type for k in KINDS}) == len(KINDS)
    assert len({k.problem_type() for k in KINDS}) == len(KINDS)
    for kind in KINDS:
        assert kind.temporal_type == kind.__name__
        assert kind_of(kind.temporal_type) is kind
        assert kind_of_problem(kind.problem_type()) is kind
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", kind.code), kind
        assert kind.problem_type().startswith(PROBLEM_PREFIX)


def test_statuses_are_http_errors() -> None:
    for kind in KINDS:
        status = HTTPStatus(kind.status)
        assert 400 <= status.value < 600, kind


def test_two_roots_and_user_errors_are_never_retried() -> None:
    assert {k for k in KINDS if not issubclass(k, (KeelUserError, KeelRunError))} == set()
    assert all(not k.retryable for k in KINDS if issubclass(k, KeelUserError))
    assert KeelError not in KINDS


def test_the_plugins_non_retryable_list_is_the_catalogues() -> None:
    listed = KeelPlugin().workflow_failure_exception_types
    assert listed is not None
    assert set(listed) == set(never_retried()) == {k for k in KINDS if not k.retryable}
    assert all(not k.retryable for k in listed)
    assert KeelUserError in listed and ReviewNotPending in listed and RateLimited not in listed


def test_a_kind_is_a_temporal_error_with_its_declared_type() -> None:
    err = RateLimited("slow down", retry_after=timedelta(seconds=3))
    assert isinstance(err, ApplicationError)
    assert (err.type, err.non_retryable, err.next_retry_delay) == (
        "RateLimited",
        False,
        timedelta(seconds=3),
    )
    assert str(err) == "slow down"
    refused = ReviewNotPending("decided", errors=[{"field": "x", "message": "y"}])
    assert (refused.type, refused.non_retryable, refused.errors[0]["field"]) == (
        "ReviewNotPending",
        True,
        "x",
    )


def test_caught_finds_a_catalogued_failure_in_temporals_chain() -> None:
    remote = ApplicationError("no collection named 'x'", type="UnknownCollection")
    activity = ActivityError(
        "activity failed",
        scheduled_event_id=1,
        started_event_id=2,
        identity="w",
        activity_type="retrieval.search",
        activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    activity.__cause__ = remote
    found = caught(activity)
    assert isinstance(found, UnknownCollection) and found.message == "no collection named 'x'"
    assert caught(ApplicationError("odd", type="SomethingElse")) is None
    assert caught(ValueError("x")) is None
    local = TemporalUnavailable("down")
    assert caught(local) is local


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_every_kind_is_raised_or_handled_somewhere(kind: type[KeelError]) -> None:
    assert re.search(rf"\b{kind.__name__}\b", _source()), f"{kind.__name__} is never used"


def test_no_failure_type_is_spelled_as_a_string() -> None:
    source = _source()
    for kind in KINDS:
        assert f'"{kind.temporal_type}"' not in source, kind
        assert f'type="{kind.temporal_type}"' not in source, kind
