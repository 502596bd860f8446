"""The routing decisions that need no workflow: which candidates fit, cheapest first."""

from keel.schemas.model import Message, ModelRequest, ToolSpec
from keel.schemas.retrieval import Passage
from keel.schemas.routing import Deployment, Price, RoutePlan
from workflows.routing import _estimate, _order

QUESTION = [Message(role="user", content="How do I export my notes?")]


def _plan(strategy: str, **deployments: tuple[Deployment, Price]) -> RoutePlan:
    return RoutePlan(
        route="r",
        strategy=strategy,  # type: ignore[arg-type]
        candidates=list(deployments),
        deployments={name: d for name, (d, _) in deployments.items()},
        prices={name: p for name, (_, p) in deployments.items()},
    )


def _deployment(**overrides: object) -> Deployment:
    return Deployment.model_validate({"provider": "openai", "model": "m", **overrides})


STRONG = (_deployment(), Price(input=2.5, output=10))
CHEAP = (_deployment(), Price(input=0.15, output=0.6))
NO_TOOLS = (_deployment(capabilities=["json"]), Price(input=0.05, output=0.2))
SMALL = (_deployment(context_window=100), Price(input=0.01, output=0.01))


def test_fixed_fallback_and_cascade_keep_the_configured_order():
    for strategy in ("fixed", "fallback", "cascade"):
        plan = _plan(strategy, strong=STRONG, cheap=CHEAP)
        assert _order(plan, ModelRequest(messages=QUESTION)) == ["strong", "cheap"]


def test_cheapest_sorts_by_estimated_cost():
    plan = _plan("cheapest", strong=STRONG, cheap=CHEAP)
    assert _order(plan, ModelRequest(messages=QUESTION)) == ["cheap", "strong"]


def test_cheapest_skips_candidates_without_a_needed_capability():
    plan = _plan("cheapest", strong=STRONG, no_tools=NO_TOOLS)
    plain = ModelRequest(messages=QUESTION)
    with_tools = ModelRequest(messages=QUESTION, tools=[ToolSpec(name="lookup")])
    assert _order(plan, plain) == ["no_tools", "strong"]
    assert _order(plan, with_tools) == ["strong"]


def test_cheapest_skips_candidates_whose_context_window_is_too_small():
    plan = _plan("cheapest", strong=STRONG, small=SMALL)
    long_doc = Passage(id="d#1", document_id="d", title="t", text="word " * 2000)
    request = ModelRequest(messages=QUESTION, documents=[long_doc], max_output_tokens=50)
    assert _order(plan, request) == ["strong"]
    assert _order(plan, ModelRequest(messages=QUESTION, max_output_tokens=50)) == [
        "small",
        "strong",
    ]


def test_estimate_counts_messages_documents_and_the_output_limit():
    doc = Passage(id="d#1", document_id="d", title="x" * 40, text="y" * 360)
    usage = _estimate(ModelRequest(messages=QUESTION, documents=[doc], max_output_tokens=7))
    assert usage.input_tokens == (len(QUESTION[0].content) + 400) // 4 + 1
    assert usage.output_tokens == 7
