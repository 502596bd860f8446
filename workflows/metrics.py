"""Run metrics, recorded from workflow code through Temporal's metric meter.

The meter is replay-safe: a replayed workflow task records nothing, so each run, review
and model call counts once however often its history is replayed. The worker drains these
metrics into OpenTelemetry (`keel.telemetry`), where they carry Temporal's own attributes
(namespace, task queue, workflow type) besides the ones given here.
"""

from datetime import timedelta

from temporalio import workflow

from keel.schemas.model import ModelResponse

__all__ = [
    "audit_sampled",
    "model_call",
    "review_closed",
    "review_opened",
    "run_finished",
    "run_started",
]


def run_started(agent: str) -> None:
    """A run of `agent` began (a continued run is not a new one)."""
    if workflow.info().continued_run_id is None:
        _counter("keel_runs_started", "Runs started.", {"agent": agent})


def run_finished(agent: str, status: str) -> None:
    """A run ended: completed, rejected, failed or cancelled."""
    _counter("keel_runs_finished", "Runs finished, by status.", {"agent": agent, "status": status})


def review_opened(agent: str, reason: str) -> None:
    """A run escalated to a person."""
    _counter("keel_escalations", "Reviews opened.", {"agent": agent, "reason": reason})


def review_closed(agent: str, reason: str, status: str, waited: timedelta) -> None:
    """A review was decided, expired or cancelled after `waited`."""
    workflow.metric_meter().with_additional_attributes(
        {"agent": agent, "reason": reason, "status": status}
    ).create_histogram_timedelta(
        "keel_review_wait", "Time from a review's opening to its decision.", "ms"
    ).record(waited)


def audit_sampled(agent: str) -> None:
    """An answer sent without review was sampled into the audit queue."""
    _counter("keel_audits_sampled", "Unreviewed answers sampled for audit.", {"agent": agent})


def model_call(route: str, response: ModelResponse) -> None:
    """A model answered one request: its tokens and cost, by route and deployment."""
    meter = workflow.metric_meter().with_additional_attributes(
        {"route": route, "deployment": response.deployment, "model": response.model}
    )
    tokens = meter.create_counter("keel_model_tokens", "Model tokens used.", "{token}")
    tokens.add(response.usage.input_tokens, {"type": "input"})
    tokens.add(response.usage.output_tokens, {"type": "output"})
    meter.create_histogram_float(
        "keel_model_cost", "Cost of one model call (the sum is the spend).", "USD"
    ).record(response.cost_usd)


def _counter(name: str, description: str, attributes: dict[str, str]) -> None:
    meter = workflow.metric_meter().with_additional_attributes(attributes)
    meter.create_counter(name, description).add(1)
