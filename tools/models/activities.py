"""The model activities: what runs inside the durable boundary for one routed call.

Which deployment to try next is deterministic workflow code (`workflows.routing`). It asks
`model.plan` once per route for the route's candidates and their prices, then runs one
`model.call` per attempt on one deployment. `model.call` fails fast while the deployment's
circuit is open, calls the provider, classifies failures with
`tools.models.errors.provider_error`, and traces the call as an OpenTelemetry GenAI
client span. Spans carry model names, token counts and cost, never prompt or answer
text, and never a key.

`ModelActivities` is built once per worker: it keeps one provider object (and so one
HTTP client) per deployment, and one circuit breaker for all of them. Prices are resolved
at construction, so a deployment without a price fails the worker's start, not a run.
With `pii`, what a non-local deployment receives has its PII replaced by placeholders, and
the answer gets the values back (`tools.guards.redaction`). With an `audit` log, each
answered call is an entry of the run's audit trail (model, tokens, cost), keyed by the
activity's id so a retried attempt writes it once.
"""

import asyncio
import os
from collections.abc import Mapping
from typing import Protocol, Self

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from temporalio import activity
from temporalio.exceptions import ApplicationError

from keel.audit import AuditLog
from keel.errors import RateLimited, UnknownDeployment, UnknownRoute
from keel.schemas.model import ModelRequest, ModelResponse
from keel.schemas.routing import (
    MODEL_CALL,
    MODEL_PLAN,
    Deployment,
    ModelCall,
    Price,
    Route,
    RoutePlan,
)
from keel.settings import Settings
from tools.guards.pii import PiiDetector, Redactor
from tools.guards.redaction import redact_request, restore_response
from tools.models.errors import NON_RETRYABLE_TYPES, provider_error
from tools.models.health import BROKEN_TYPES, TRIPPING_TYPES, CircuitBreaker
from tools.models.local import LocalProvider
from tools.models.prices import price_for
from tools.models.triage import TriageModels

__all__ = ["GEN_AI_SYSTEMS", "ModelActivities"]

GEN_AI_SYSTEMS = {
    "openai": "openai",
    "openai_compatible": "openai",
    "anthropic": "anthropic",
    "local": "local",
}
"""`gen_ai.system` / `gen_ai.provider.name` of each provider kind."""

_TRACER = trace.get_tracer("keel.models")

# Non-retryable provider errors still prove the provider answered: they close a circuit.
_ANSWERED = NON_RETRYABLE_TYPES


class _Provider(Protocol):
    async def complete(self, request: ModelRequest, price: Price) -> ModelResponse: ...

    async def aclose(self) -> None: ...


class ModelActivities:
    """`model.plan` and `model.call`, over a worker's deployments and routes."""

    def __init__(
        self,
        deployments: Mapping[str, Deployment],
        routes: Mapping[str, Route],
        breaker: CircuitBreaker | None = None,
        triage: TriageModels | None = None,
        rate_limit_cooldown_s: float = 5.0,
    ) -> None:
        self.deployments = dict(deployments)
        self.routes = dict(routes)
        self.breaker = breaker or CircuitBreaker()
        self.rate_limit_cooldown_s = rate_limit_cooldown_s
        """How long a rate-limited deployment rests when its route can move on (no Retry-After)."""
        self.prices = {name: price_for(name, spec) for name, spec in self.deployments.items()}
        self._providers: dict[str, tuple[Deployment, _Provider]] = {}
        for name, spec in self.deployments.items():  # each SDK loads here, not in a call
            if spec.provider != "local":
                self._provider(name, spec)
        self._local = LocalProvider(triage)
        self.audit: AuditLog | None = None
        """Where answered calls are recorded (set by the worker once its database is up)."""
        self.pii: PiiDetector | None = None
        """When set, PII in what goes to a non-local deployment is redacted (`redact`)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        breaker: CircuitBreaker | None = None,
        triage: TriageModels | None = None,
    ) -> Self:
        """The activities for `settings.deployments` and `settings.routes`.

        `triage` holds the agents' classifiers the `local` provider may use.
        """
        breaker = breaker or CircuitBreaker(
            settings.model_circuit_failures, settings.model_circuit_cooldown_s
        )
        return cls(
            settings.deployments,
            settings.routes,
            breaker,
            triage,
            settings.model_rate_limit_cooldown_s,
        )

    @activity.defn(name=MODEL_PLAN)
    async def plan(self, route: str) -> RoutePlan:
        """What the workflow needs to route a request on `route`.

        Args:
            route: A route name.

        Returns:
            The route's strategy, threshold and candidates, with their deployments and
            prices (deployments name their key's variable, never the key).

        Raises:
            UnknownRoute: For a route not configured.
            UnknownDeployment: For a route naming a deployment not configured.

        """
        spec = self.routes.get(route)
        if spec is None:
            raise UnknownRoute(
                f"unknown model route {route!r}; routes: {', '.join(sorted(self.routes))}"
            )
        missing = [name for name in spec.candidates if name not in self.deployments]
        if missing:
            raise UnknownDeployment(
                f"route {route!r} names deployment {missing[0]!r}, which is not configured"
            )
        return RoutePlan(
            route=route,
            strategy=spec.strategy,
            threshold=spec.threshold,
            candidates=list(spec.candidates),
            deployments={name: self.deployments[name] for name in spec.candidates},
            prices={name: self.prices[name] for name in spec.candidates},
        )

    @activity.defn(name=MODEL_CALL)
    async def call(self, call: ModelCall) -> ModelResponse:
        """One attempt of one request on one deployment.

        Args:
            call: The deployment, its spec and price, and the request.

        Returns:
            The normalised, priced response.

        Raises:
            KeelError: `CircuitOpen` while the deployment is failing, else a
                provider failure classified by `provider_error`.

        """
        spec, request = call.spec, call.request
        system = GEN_AI_SYSTEMS[spec.provider]
        attributes: dict[str, str | int | float] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": system,
            "gen_ai.provider.name": system,
            "gen_ai.request.model": spec.model,
            "gen_ai.request.max_tokens": request.max_output_tokens,
            "keel.deployment": call.deployment,
        }
        if request.temperature is not None:
            attributes["gen_ai.request.temperature"] = request.temperature
        if request.idempotency_key:
            attributes["keel.idempotency_key"] = request.idempotency_key
        with _TRACER.start_as_current_span(
            f"chat {spec.model}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            # Exceptions are recorded below, as their classified type only: SDK messages
            # can quote the request or part of the key.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                self.breaker.check(call.deployment)
                response = await self._complete(call)
            except Exception as exc:
                error = provider_error(exc, call.deployment)
                span.set_attribute("error.type", error.type or type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, error.message))
                if isinstance(error, RateLimited) and call.move_on_when_limited:
                    # Another candidate can answer now: rest this one, and end the call.
                    delay = error.next_retry_delay
                    rest = self.rate_limit_cooldown_s if delay is None else delay.total_seconds()
                    self.breaker.rest(call.deployment, rest)
                    raise ApplicationError(
                        error.message, type=error.type, non_retryable=True
                    ) from None
                self._record(call.deployment, error.type or "")
                raise error from None
            self.breaker.record_success(call.deployment)
            span.set_attributes(
                {
                    "gen_ai.response.model": response.model,
                    "gen_ai.response.finish_reasons": [response.finish_reason],
                    "gen_ai.usage.input_tokens": response.usage.input_tokens,
                    "gen_ai.usage.output_tokens": response.usage.output_tokens,
                    "keel.cost_usd": response.cost_usd,
                }
            )
        if self.audit is not None:
            await _audit(self.audit, call, response)
        return response

    def keyless_routes(self) -> list[str]:
        """The route candidates whose key variable is unset or empty, a line each.

        Their calls fail with `MissingApiKey`, so a worker says so when it starts.
        """
        lines = []
        for route, spec in sorted(self.routes.items()):
            for name in spec.candidates:
                env = self.deployments[name].key_env
                if env is not None and not os.environ.get(env, "").strip():
                    lines.append(f"route {route!r}: deployment {name!r} has no key ({env} unset)")
        return lines

    async def aclose(self) -> None:
        """Close every provider's HTTP client (at worker shutdown)."""
        providers, self._providers = self._providers, {}
        for _, provider in providers.values():
            await provider.aclose()

    async def _complete(self, call: ModelCall) -> ModelResponse:
        if call.spec.provider == "local":
            response = await self._local.complete(call.request)
            return response.model_copy(update={"deployment": call.deployment, "cost_usd": 0.0})
        provider = self._provider(call.deployment, call.spec)
        if self.pii is None:
            return await provider.complete(call.request, call.price)
        redactor = Redactor(self.pii)
        request = await asyncio.to_thread(redact_request, redactor, call.request)
        return restore_response(redactor, await provider.complete(request, call.price))

    def _provider(self, name: str, spec: Deployment) -> _Provider:
        held = self._providers.get(name)
        if held is not None and held[0] == spec:
            return held[1]
        # An SDK is imported with the first deployment that uses it: a worker whose
        # deployments use neither holds neither (they are large).
        provider: _Provider
        if spec.provider == "anthropic":
            from tools.models.providers.anthropic import AnthropicProvider

            provider = AnthropicProvider(name, spec)
        else:
            from tools.models.providers.openai import OpenAIProvider

            provider = OpenAIProvider(name, spec)
        # A changed spec (a run started under other settings) gets a provider of its own.
        self._providers[name] = (spec, provider)
        return provider

    def _record(self, deployment: str, kind: str) -> None:
        if kind in BROKEN_TYPES:
            self.breaker.record_broken(deployment)
        elif kind in TRIPPING_TYPES:
            self.breaker.record_failure(deployment)
        elif kind in _ANSWERED:
            self.breaker.record_success(deployment)


async def _audit(audit: AuditLog, call: ModelCall, response: ModelResponse) -> None:
    """Record an answered call in the run's audit trail, once per activity."""
    info = activity.info()
    await audit.append(
        info.workflow_id or "",
        f"{info.workflow_run_id}:{info.activity_id}",
        "model.call",
        None,
        {
            "deployment": call.deployment,
            "route": call.request.route,
            "provider": call.spec.provider,
            "model": response.model,
            "input_tokens": response.usage.input_tokens,
            "output_tokens": response.usage.output_tokens,
            "cost_usd": response.cost_usd,
        },
    )
