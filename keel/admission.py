"""Admission: the one way a run's input is made, for the API, calibration, bench and tests.

`admit` takes an agent, a raw input and the settings, and answers with everything starting
the run needs (`Admission`): the input validated against the agent's input model, the
escalation policy resolved for the agent, the model budget and the history limits, the
workflow id derived from the idempotency key, and the digest that tells a repeated request
from a different one under the same key.
"""

import hashlib
import json
import uuid
from collections.abc import Mapping

from pydantic import JsonValue

from keel.agents import AgentSpec, agent_catalog
from keel.errors import KeelUserError
from keel.schemas.continuation import HistoryLimits
from keel.schemas.policy import RunPolicy
from keel.schemas.runs import Admission, RunInput
from keel.settings import Settings

__all__ = ["admit", "run_policy"]

_PREVIEW_CHARS = 80


def _spec(agent: AgentSpec | str) -> AgentSpec:
    if isinstance(agent, AgentSpec):
        return agent
    spec = agent_catalog().get(agent)
    if spec is None:
        agents = ", ".join(sorted(agent_catalog()))
        raise KeelUserError(f"unknown agent {agent!r}; agents: {agents}")
    return spec


def admit(
    settings: Settings,
    agent: AgentSpec | str,
    raw: Mapping[str, JsonValue] | str,
    *,
    idempotency_key: str | None = None,
    submitter: str | None = None,
) -> Admission:
    """Admit a run of `agent` on `raw` under `settings`.

    Args:
        settings: Where the threshold, review timeout, escalation rules, budget and history
            limits come from.
        agent: The agent, or its name in the catalog.
        raw: An object matching the agent's input model, or a string for its text field.
        idempotency_key: Equal keys (of one submitter) give the same workflow id; without
            one the id is new.
        submitter: The principal starting the run (None: open mode).

    Raises:
        KeelUserError: `agent` names no installed agent.
        pydantic.ValidationError: `raw` does not match the agent's input model (the error
            locations are within the input).

    """
    spec = _spec(agent)
    data = {spec.text_field: raw} if isinstance(raw, str) else raw
    payload = spec.input_model.model_validate(data).model_dump(mode="json")
    run_input = RunInput(
        agent=spec.name,
        input=payload,
        policy=run_policy(settings, spec),
        budget_usd=settings.escalation.budget_usd(spec.name, settings.run_budget_usd),
        budget_action=settings.budget_action,
        submitted_by=submitter,
        history=HistoryLimits(
            max_events=settings.history_max_events, max_bytes=settings.history_max_bytes
        ),
    )
    return Admission(
        run_id=_run_id(idempotency_key, submitter),
        input=run_input,
        request_digest=_request_digest(spec.name, payload),
        summary=f"{spec.name}: {_preview(payload, spec.text_field)}",
    )


def run_policy(settings: Settings, agent: AgentSpec | str) -> RunPolicy:
    """`agent`'s escalation policy under `settings`, as its runs carry it.

    Raises:
        KeelUserError: `agent` names no installed agent.

    """
    spec = _spec(agent)
    return settings.escalation.for_agent(
        spec.name,
        threshold=settings.review_threshold,
        timeout_s=settings.review_timeout_s,
        claim_lease_s=settings.review_claim_lease_s,
        triage_escalate=spec.triage_escalate,
        policy_terms=spec.policy_terms,
    )


def _run_id(idempotency_key: str | None, submitter: str | None) -> str:
    if idempotency_key is None:
        return f"run-{uuid.uuid4().hex}"
    # A hash keeps any key usable as a workflow id, and equal keys give equal ids.
    scoped = idempotency_key if submitter is None else f"{submitter}\n{idempotency_key}"
    return f"run-{hashlib.sha256(scoped.encode()).hexdigest()[:32]}"


def _request_digest(agent: str, payload: Mapping[str, object]) -> str:
    canonical = json.dumps({"agent": agent, "input": payload}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _preview(payload: Mapping[str, object], text_field: str) -> str:
    text = str(payload.get(text_field, payload))
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"
