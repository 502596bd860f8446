"""Model routing inside the durable boundary.

Agents call `run_context().router.complete(request, step=...)` from workflow-side graph
nodes (`workflows.run_context`); each run, and each replay, has its own router. Which
deployment answers is decided here, in deterministic workflow code; every attempt on one
deployment is one `model.call` activity (summary `step: provider/model`), so failovers show
in the Temporal UI and a replay never calls a model; a deployment marked `local_activity`
(a fast model on the worker itself) is called as a local activity instead. Strategies:

- `fixed`     the first candidate.
- `fallback`  candidates in order; a retryable failure that outlasts the deployment's
              attempts, an open circuit, or a deployment that cannot answer anyone (its
              key missing or refused, its model unknown) moves on; a failure of the
              request itself (a 400, a context too long) fails the call. A rate limit
              moves on at once, resting that deployment (its Retry-After, else
              `model_rate_limit_cooldown_s`), unless it is the last candidate.
- `cheapest`  the candidates that fit the request (capabilities, context window), cheapest
              estimated cost first, then as `fallback`.
- `cascade`   candidates from cheap to strong; the first answer whose confidence reaches
              the route's threshold is final, else the last answer is.

Every answered call is priced and goes into the run's ledger. Before each call the router
checks the run's budget; a call that would exceed it either fails the run or asks a
reviewer (LangGraph `interrupt()`, reason `budget`). A graph node re-runs from its start
when it resumes, so answers are remembered per (step, deployment): a resumed node gets the
calls it already made back without calling, or paying, twice.
"""

import asyncio
from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from collections.abc import Callable

    from langgraph.types import interrupt

    from keel.errors import (
        BudgetDenied,
        BudgetExceeded,
        CircuitOpen,
        ProviderError,
        broken_deployment_types,
        catalogue,
    )
    from keel.schemas.model import ModelRequest, ModelResponse, Usage
    from keel.schemas.reviews import ReviewDecision, ReviewRequest
    from keel.schemas.routing import (
        MODEL_CALL,
        MODEL_PLAN,
        Ledger,
        ModelCall,
        RoutePlan,
    )
    from workflows import metrics
    from workflows.activity_options import MODEL_PLAN_OPTIONS, model_call_options

__all__ = ["BROKEN_DEPLOYMENT_ERRORS", "FAILOVER_ERRORS", "Budget", "Router"]

# Patch id: a run's cost search attribute is only upserted when a call cost something.
_FREE_CALLS_KEEP_COST = "keel.free-calls-keep-cost"
# Patch id: a deployment that cannot answer anyone moves the route on (runs before it failed).
_BROKEN_DEPLOYMENTS_FAIL_OVER = "keel.broken-deployments-fail-over"

FAILOVER_ERRORS = frozenset(
    kind.temporal_type
    for kind in catalogue()
    if (issubclass(kind, ProviderError) and kind.retryable) or kind is CircuitOpen
)
"""`ApplicationError` types after which a route tries its next candidate: a provider failure
that another attempt may fix, or an open circuit."""

BROKEN_DEPLOYMENT_ERRORS = broken_deployment_types()
"""`ApplicationError` types that say a deployment cannot answer anyone until it is fixed: a
route tries its next candidate after them too (a `fixed` route has none)."""


@dataclass
class Budget:
    """A run's spending limit and what happens when a call would pass it."""

    limit_usd: float | None
    """Model spend allowed; None for no limit."""
    action: str
    """`escalate` (ask a reviewer) or `fail`."""


class Router:
    """Routes one run's model calls and keeps its ledger."""

    def __init__(self, budget: Budget, on_cost: Callable[[float], None]) -> None:
        self.ledger = Ledger()
        self._budget = budget
        self._on_cost = on_cost
        self._plans: dict[str, RoutePlan] = {}
        self._planning = asyncio.Lock()  # concurrent first calls share one `model.plan`
        self._answers: dict[tuple[str, str], ModelResponse] = {}

    @property
    def budget(self) -> Budget:
        """The run's budget; a reviewer's approval raises its limit."""
        return self._budget

    async def complete(self, request: ModelRequest, *, step: str) -> ModelResponse:
        """Answer `request` on its route; `step` names the call within the run."""
        plan = await self._plan(request.route)
        failure: BaseException | None = None
        answer: ModelResponse | None = None
        order = _order(plan, request)
        for n, name in enumerate(order):
            # Where another candidate follows, a rate limit moves on rather than waiting.
            move_on = plan.strategy != "fixed" and n < len(order) - 1
            try:
                answer = await self._attempt(plan, name, request, step, move_on)
            except ActivityError as err:
                if plan.strategy == "fixed" or not (_fails_over(err) or _broken(err)):
                    raise
                failure = err
                continue
            if plan.strategy != "cascade" or (answer.confidence or 0.0) >= (plan.threshold or 0.0):
                return answer
        if answer is not None:  # a cascade whose stronger candidates were not sure either
            return answer
        assert failure is not None
        raise failure

    async def _plan(self, route: str) -> RoutePlan:
        async with self._planning:
            if route not in self._plans:
                self._plans[route] = await self._fetch_plan(route)
        return self._plans[route]

    async def _fetch_plan(self, route: str) -> RoutePlan:
        return await workflow.execute_local_activity(
            MODEL_PLAN,
            route,
            result_type=RoutePlan,
            **MODEL_PLAN_OPTIONS.for_local_activity(summary=f"plan route {route}"),
        )

    async def _attempt(
        self, plan: RoutePlan, name: str, request: ModelRequest, step: str, move_on: bool
    ) -> ModelResponse:
        if (step, name) in self._answers:
            return self._answers[(step, name)]
        spec, price = plan.deployments[name], plan.prices[name]
        await self._within_budget(request, price.cost(_estimate(request)))
        call = ModelCall(
            deployment=name,
            spec=spec,
            price=price,
            request=request.model_copy(
                update={"idempotency_key": f"{workflow.info().workflow_id}:{step}:{name}"}
            ),
            move_on_when_limited=move_on,
        )
        options = model_call_options(spec)
        summary = f"{step}: {spec.provider}/{spec.model}"
        if spec.local_activity:
            answer = await workflow.execute_local_activity(
                MODEL_CALL,
                call,
                result_type=ModelResponse,
                **options.for_local_activity(summary=summary),
            )
        else:
            answer = await workflow.execute_activity(
                MODEL_CALL,
                call,
                result_type=ModelResponse,
                **options.for_activity(summary=summary),
            )
        self._answers[(step, name)] = answer
        self.ledger.record(step, answer)
        metrics.model_call(request.route, answer)
        # A free call leaves the run's cost where it was (runs started before this patch
        # recorded it anyway, and replay the same).
        if answer.cost_usd or not workflow.patched(_FREE_CALLS_KEEP_COST):
            self._on_cost(self.ledger.total_usd)
        return answer

    async def _within_budget(self, request: ModelRequest, estimate: float) -> None:
        limit = self._budget.limit_usd
        spent = self.ledger.total_usd
        if limit is None or spent + estimate <= limit:
            return
        message = (
            f"the next model call (about ${estimate:.6f}) would take this run's model spend "
            f"from ${spent:.6f} past its budget of ${limit:.6f}"
        )
        if self._budget.action == "fail":
            raise BudgetExceeded(message)
        review = ReviewRequest(
            reason="budget",
            question=request.question,
            proposed_answer=f"Approve to let {message.removeprefix('the ')} continue.",
            cost_usd=spent,
        )
        decision = ReviewDecision.model_validate(interrupt(review.model_dump(mode="json")))
        if decision.action == "reject":
            raise BudgetDenied(message)
        # Approval grants one more budget's worth beyond this call.
        self._budget.limit_usd = spent + estimate + limit


def _order(plan: RoutePlan, request: ModelRequest) -> list[str]:
    if plan.strategy != "cheapest":
        return list(plan.candidates)
    needs: set[str] = {"tools"} if request.tools else set()
    if request.json_schema is not None:
        needs.add("json")
    usage = _estimate(request)
    fitting = [
        name
        for name in plan.candidates
        if needs <= set(plan.deployments[name].capabilities)
        and usage.input_tokens + usage.output_tokens <= plan.deployments[name].context_window
    ]
    # sorted() is stable: equal prices keep the configured order.
    return sorted(fitting, key=lambda name: plan.prices[name].cost(usage))


def _estimate(request: ModelRequest) -> Usage:
    """A deterministic upper-bound guess of a call's usage (about 4 characters a token)."""
    chars = sum(len(m.content) for m in request.messages) + sum(
        len(d.title) + len(d.text) for d in request.documents
    )
    return Usage(input_tokens=chars // 4 + 1, output_tokens=request.max_output_tokens)


def _broken(err: ActivityError) -> bool:
    cause = err.cause
    return (
        isinstance(cause, ApplicationError)
        and cause.type in BROKEN_DEPLOYMENT_ERRORS
        and workflow.patched(_BROKEN_DEPLOYMENTS_FAIL_OVER)
    )


def _fails_over(err: ActivityError) -> bool:
    cause = err.cause
    if isinstance(cause, TimeoutError):
        return True
    return isinstance(cause, ApplicationError) and cause.type in FAILOVER_ERRORS
