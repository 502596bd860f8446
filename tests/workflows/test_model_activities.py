"""`model.plan` and `model.call` in Temporal's activity test environment, on the wire server."""

from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from keel.errors import KeelUserError
from keel.schemas.model import Message, ModelRequest, ModelResponse
from keel.schemas.routing import Deployment, ModelCall, Price, Route
from keel.settings import LOCAL_DEPLOYMENT, Settings
from keel.testing.replies import Reply, Usage
from keel.testing.server import WireServer
from tools.models.activities import ModelActivities
from tools.models.health import CircuitBreaker
from tools.models.prices import PRICES

KEY_ENV = "KEEL_TEST_ACTIVITY_KEY"
SECRET = "sk-test-77aa-never-in-a-plan"
PROMPT = "What is the secret launch date of Project Nightjar?"
STRONG_PRICE = Price(input=3.0, output=15.0, cached=0.3)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def server() -> Iterator[WireServer]:
    with WireServer() as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def activities(
    server: WireServer,
    spans: InMemorySpanExporter,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[ModelActivities]:
    server.reset()
    spans.clear()
    monkeypatch.setenv(KEY_ENV, SECRET)
    deployments = {
        "fast": Deployment(
            provider="openai",
            model="gpt-4o-mini",
            api_key_env=KEY_ENV,
            base_url=server.openai_base_url,
            timeout_s=5,
        ),
        "strong": Deployment(
            provider="anthropic",
            model="claude-sonnet-4-5",
            api_key_env=KEY_ENV,
            base_url=server.anthropic_base_url,
            price=STRONG_PRICE,
            timeout_s=5,
        ),
        "local": LOCAL_DEPLOYMENT,
    }
    routes = {
        "default": Route(strategy="cascade", threshold=0.7, candidates=["fast", "strong"]),
        "offline": Route(candidates=["local"]),
    }
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=30, clock=clock)
    built = ModelActivities(deployments, routes, breaker)
    yield built
    await built.aclose()


def _call(activities: ModelActivities, name: str, **request: object) -> ModelCall:
    return ModelCall(
        deployment=name,
        spec=activities.deployments[name],
        price=activities.prices[name],
        request=ModelRequest(
            messages=[Message(role="user", content=PROMPT)],
            idempotency_key="wf-9:answer:" + name,
            **request,  # type: ignore[arg-type]
        ),
    )


async def _run(activities: ModelActivities, call: ModelCall) -> ModelResponse:
    return await ActivityEnvironment().run(activities.call, call)


async def test_plan_resolves_candidates_and_prices_without_keys(
    activities: ModelActivities,
) -> None:
    plan = await ActivityEnvironment().run(activities.plan, "default")

    assert (plan.route, plan.strategy, plan.threshold) == ("default", "cascade", 0.7)
    assert plan.candidates == ["fast", "strong"]
    assert plan.deployments == {n: activities.deployments[n] for n in ("fast", "strong")}
    assert plan.prices == {"fast": PRICES["gpt-4o-mini"], "strong": STRONG_PRICE}
    assert SECRET not in plan.model_dump_json()


async def test_unknown_route_names_the_known_ones(activities: ModelActivities) -> None:
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(activities.plan, "nope")

    assert (caught.value.type, caught.value.non_retryable) == ("UnknownRoute", True)
    assert "default, offline" in caught.value.message


def test_from_settings_and_unpriced_deployments() -> None:
    settings = Settings(
        deployments={"mini": Deployment(provider="openai", model="gpt-4.1-mini")},
        routes={"default": Route(candidates=["mini", "local"])},
    )
    built = ModelActivities.from_settings(settings)
    assert built.prices == {"mini": PRICES["gpt-4.1-mini"], "local": Price(input=0, output=0)}

    unpriced = {"new": Deployment(provider="openai", model="gpt-9")}
    with pytest.raises(KeelUserError, match=r"deployments\.new\.price"):
        ModelActivities(unpriced, {})


def test_routes_whose_deployments_lack_keys_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv(KEY_ENV, SECRET)
    deployments = {
        "gpt": Deployment(provider="openai", model="gpt-4.1-mini"),
        "claude": Deployment(provider="anthropic", model="claude-sonnet-4-5", api_key_env=KEY_ENV),
        "vllm": Deployment(
            provider="openai_compatible",
            model="m",
            base_url="http://x",
            price=Price(input=0, output=0),
        ),
        "local": LOCAL_DEPLOYMENT,
    }
    routes = {"default": Route(strategy="fallback", candidates=["gpt", "claude", "vllm", "local"])}
    assert ModelActivities(deployments, routes).keyless_routes() == [
        "route 'default': deployment 'gpt' has no key (OPENAI_API_KEY unset)"
    ]
    assert deployments["vllm"].key_env is None and deployments["local"].key_env is None


async def test_call_answers_through_the_provider_and_is_traced(
    activities: ModelActivities, server: WireServer, spans: InMemorySpanExporter
) -> None:
    server.push(Reply(text="Not public.", usage=Usage(input_tokens=400, output_tokens=100)))

    response = await _run(activities, _call(activities, "fast", temperature=0.1))

    assert response.text == "Not public."
    assert response.deployment == "fast"
    assert response.cost_usd == pytest.approx((400 * 0.15 + 100 * 0.60) / 1e6)
    assert server.requests[0].idempotency_key == "wf-9:answer:fast"
    (span,) = spans.get_finished_spans()
    assert (span.name, span.kind) == ("chat gpt-4o-mini", SpanKind.CLIENT)
    attributes = dict(span.attributes or {})
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.max_tokens": 512,
        "gen_ai.request.temperature": 0.1,
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 400,
        "gen_ai.usage.output_tokens": 100,
        "keel.deployment": "fast",
        "keel.cost_usd": pytest.approx(0.00012),
        "keel.idempotency_key": "wf-9:answer:fast",
    }
    said = " ".join(str(v) for v in attributes.values())
    assert "Nightjar" not in said and "Not public" not in said and SECRET not in said
    assert span.status.status_code != StatusCode.ERROR


async def test_local_and_anthropic_calls(
    activities: ModelActivities, server: WireServer, spans: InMemorySpanExporter
) -> None:
    local = await _run(activities, _call(activities, "local"))
    assert (local.provider, local.deployment, local.cost_usd) == ("local", "local", 0.0)
    assert server.requests == []

    server.push(Reply(text="Soon.\nConfidence: 0.4"))
    strong = await _run(activities, _call(activities, "strong"))
    assert (strong.provider, strong.confidence) == ("anthropic", 0.4)

    systems = [s.attributes["gen_ai.system"] for s in spans.get_finished_spans() if s.attributes]
    assert systems == ["local", "anthropic"]


async def test_failed_call_marks_the_span(
    activities: ModelActivities, server: WireServer, spans: InMemorySpanExporter
) -> None:
    server.push(Reply.rate_limited(retry_after=3, message=f"slow down, {PROMPT}"))

    with pytest.raises(ApplicationError) as caught:
        await _run(activities, _call(activities, "fast"))

    assert (caught.value.type, caught.value.non_retryable) == ("RateLimited", False)
    (span,) = spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "RateLimited"
    assert span.events == ()  # no exception event: SDK messages may quote the request
    assert "Nightjar" not in (span.status.description or "")


async def test_breaker_opens_fails_fast_and_probes(
    activities: ModelActivities, server: WireServer, clock: Clock
) -> None:
    call = _call(activities, "fast")
    server.push(Reply.error(400))  # the provider answered: not a health failure
    server.push(*[Reply.error(503)] * 3)
    kinds = []
    for _ in range(4):
        with pytest.raises(ApplicationError) as caught:
            await _run(activities, call)
        kinds.append(caught.value.type)
    assert kinds == [
        "BadRequest",
        "ProviderUnavailable",
        "ProviderUnavailable",
        "ProviderUnavailable",
    ]

    with pytest.raises(ApplicationError) as caught:
        await _run(activities, call)
    assert (caught.value.type, caught.value.non_retryable) == ("CircuitOpen", True)
    assert len(server.requests) == 4  # failed fast: the server never saw the fifth call
    assert activities.breaker.state("fast") == "open"

    # Other deployments are not affected.
    server.push(Reply(text="fine"))
    await _run(activities, _call(activities, "strong"))

    # After the cooldown one probe goes through; its failure re-opens the circuit.
    clock.now += 30
    server.push(Reply.error(502))
    with pytest.raises(ApplicationError, match="HTTP 502"):
        await _run(activities, call)
    with pytest.raises(ApplicationError) as caught:
        await _run(activities, call)
    assert caught.value.type == "CircuitOpen"
    assert len(server.requests) == 6

    # The next probe succeeds and closes it.
    clock.now += 30
    server.push(Reply(text="back"), Reply(text="still here"))
    assert (await _run(activities, call)).text == "back"
    assert activities.breaker.state("fast") == "closed"
    assert (await _run(activities, call)).text == "still here"


def test_half_open_lets_exactly_one_probe_through(clock: Clock) -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=10, clock=clock)
    breaker.record_failure("d")
    breaker.check("d")  # one failure is below the threshold
    breaker.record_failure("d")
    with pytest.raises(ApplicationError, match="retry in 10.0s"):
        breaker.check("d")

    clock.now += 10
    breaker.check("d")  # the probe
    with pytest.raises(ApplicationError, match="probe call is in flight"):
        breaker.check("d")
    assert breaker.state("d") == "half_open"

    clock.now += 10  # a probe that never reported is replaced
    breaker.check("d")
    breaker.record_success("d")
    breaker.check("d")
    breaker.check("d")
    assert breaker.state("d") == "closed"


async def test_a_refused_key_opens_the_circuit_at_once_and_a_probe_closes_it(
    activities: ModelActivities, server: WireServer, clock: Clock
) -> None:
    call = _call(activities, "fast")
    server.push(Reply.error(401, "bad key"))
    with pytest.raises(ApplicationError) as caught:
        await _run(activities, call)
    assert (caught.value.type, caught.value.non_retryable) == ("AuthenticationFailed", True)
    assert activities.breaker.state("fast") == "open"
    with pytest.raises(ApplicationError) as caught:
        await _run(activities, call)
    assert caught.value.type == "CircuitOpen" and len(server.requests) == 1

    # Once the key is fixed, the probe after the cooldown answers and closes the circuit.
    clock.now += 30
    server.push(Reply(text="fixed"))
    assert (await _run(activities, call)).text == "fixed"
    assert activities.breaker.state("fast") == "closed"


async def test_a_rate_limit_where_the_route_can_move_on_rests_the_deployment(
    activities: ModelActivities, server: WireServer, clock: Clock
) -> None:
    moving_on = _call(activities, "fast").model_copy(update={"move_on_when_limited": True})
    server.push(Reply.rate_limited(12))
    with pytest.raises(ApplicationError) as caught:
        await _run(activities, moving_on)
    # Not retried here: the route moves on, and the deployment rests for its Retry-After.
    assert (caught.value.type, caught.value.non_retryable) == ("RateLimited", True)
    with pytest.raises(ApplicationError, match="retry in 12.0s"):
        await _run(activities, moving_on)
    assert len(server.requests) == 1
    clock.now += 12
    server.push(Reply(text="rested"))
    assert (await _run(activities, moving_on)).text == "rested"

    # The last candidate waits instead: a retryable 429 with its Retry-After.
    server.push(Reply.rate_limited(0.5))
    with pytest.raises(ApplicationError) as caught:
        await _run(activities, _call(activities, "fast"))
    assert (caught.value.type, caught.value.non_retryable) == ("RateLimited", False)
    assert caught.value.next_retry_delay is not None
    assert caught.value.next_retry_delay.total_seconds() == 0.5
