"""`ActivityOptions`: the keyword arguments it gives are the ones the SDK takes."""

import inspect
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

from keel.schemas.routing import Deployment
from workflows.activity_options import (
    CALL_HEARTBEAT_TIMEOUT,
    INGEST_BATCH_OPTIONS,
    TOOL_CATALOG_OPTIONS,
    model_call_options,
)


def _parameters(function: Callable[..., object]) -> set[str]:
    return set(inspect.signature(function).parameters)


def test_every_option_is_a_parameter_of_the_call_it_is_for() -> None:
    assert set(INGEST_BATCH_OPTIONS.for_activity()) <= _parameters(workflow.execute_activity)
    local = INGEST_BATCH_OPTIONS.for_local_activity()
    assert set(local) <= _parameters(workflow.execute_local_activity)


def test_a_local_activity_gets_no_heartbeat_timeout() -> None:
    options = model_call_options(Deployment(provider="local", model="m"))
    assert options.for_activity()["heartbeat_timeout"] == CALL_HEARTBEAT_TIMEOUT
    assert "heartbeat_timeout" not in options.for_local_activity()


def test_a_call_names_itself_else_the_fixed_summary_shows() -> None:
    assert TOOL_CATALOG_OPTIONS.for_local_activity()["summary"] == "tool catalog"
    assert TOOL_CATALOG_OPTIONS.for_local_activity(summary="x")["summary"] == "x"


def test_a_deployment_timeout_gets_five_seconds_of_slack() -> None:
    options = model_call_options(Deployment(provider="local", model="m", timeout_s=20))
    assert options.start_to_close_timeout == timedelta(seconds=25)
