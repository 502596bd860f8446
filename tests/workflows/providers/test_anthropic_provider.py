"""The Anthropic adapter, through the real SDK, against the wire server."""

import json
from typing import Any

import pytest

from keel.schemas.model import Message
from keel.schemas.routing import Price
from keel.testing.replies import Reply, Usage
from keel.testing.server import WireServer
from tests.workflows.providers.support import DOCS, LABELS, LOOKUP, PRICE, Make, ask


async def test_anthropic_answer_usage_cost_confidence_and_request(
    make: Make, server: WireServer
) -> None:
    server.push(
        Reply(
            text="Open Settings [kb/reset#steps].\nConfidence: 0.83",
            usage=Usage(
                input_tokens=1000, output_tokens=200, cached_tokens=500, cache_write_tokens=300
            ),
        )
    )
    request = ask(documents=DOCS, temperature=1.5, idempotency_key="wf-1:answer:ant")
    price = Price(input=3.0, output=15.0, cached=0.30, cache_write=3.75)

    response = await make("anthropic").complete(request, price)

    assert response.text == "Open Settings [kb/reset#steps]."
    assert response.confidence == 0.83
    assert response.citations == ["kb/reset#steps"]
    assert (response.provider, response.model, response.deployment) == (
        "anthropic",
        "claude-sonnet-4-5",
        "ant",
    )
    # Cache reads and writes are counted apart on the wire and added back into input_tokens;
    # each is billed at its own price.
    assert response.usage.model_dump() == {
        "input_tokens": 1800,
        "output_tokens": 200,
        "cached_tokens": 500,
        "cache_write_tokens": 300,
    }
    assert response.cost_usd == pytest.approx(
        (1000 * 3.0 + 500 * 0.30 + 300 * 3.75 + 200 * 15.0) / 1e6
    )
    (sent,) = server.requests
    assert sent.path == "/v1/messages"
    assert sent.body["system"].startswith("You are Quillpad support.")
    assert '<document id="kb/sso#login" title="Single sign-on">' in sent.body["system"]
    assert "Confidence: 0.83" in sent.body["system"]
    assert sent.body["messages"] == [{"role": "user", "content": "How do I reset my password?"}]
    assert sent.body["temperature"] == 1.0  # Anthropic's scale stops at 1
    assert sent.idempotency_key == "wf-1:answer:ant"
    assert sent.headers["authorization"] == "***"  # this SDK sends the key as a bearer token


async def test_anthropic_labels_and_truncation(make: Make, server: WireServer) -> None:
    server.push(Reply(text="billing\nConfidence: 0.9", truncated=True))

    response = await make("anthropic").complete(ask("Refund me", labels=LABELS), PRICE)

    assert (response.label, response.confidence, response.finish_reason) == (
        "billing",
        0.9,
        "length",
    )


async def test_anthropic_tool_use_round_trip(make: Make, server: WireServer) -> None:
    adapter = make("anthropic")
    server.push(Reply.tool_call("lookup_order", {"order_id": "A1"}))

    first = await adapter.complete(ask("Where is order A1?", tools=[LOOKUP]), PRICE)

    (call,) = first.tool_calls
    assert (call.name, call.arguments, first.finish_reason) == (
        "lookup_order",
        {"order_id": "A1"},
        "tool_calls",
    )
    assert call.id.startswith("toolu_")
    sent = server.requests[0].body
    assert sent["tools"] == [
        {"name": "lookup_order", "description": "Find an order.", "input_schema": LOOKUP.parameters}
    ]
    assert "Confidence" not in sent["system"]  # a tool turn's reply is not free text

    server.push(Reply(text="It shipped."))
    follow_up = ask("Where is order A1?", tools=[LOOKUP])
    follow_up.messages += [
        Message(role="assistant", content="Looking.", tool_calls=[call]),
        Message(role="tool", tool_call_id=call.id, content="shipped"),
    ]
    await adapter.complete(follow_up, PRICE)

    turns = server.requests[1].body["messages"]
    assert turns[-2] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Looking."},
            {
                "type": "tool_use",
                "id": call.id,
                "name": "lookup_order",
                "input": {"order_id": "A1"},
            },
        ],
    }
    assert turns[-1] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "shipped"}],
    }


async def test_anthropic_json_schema_and_refusal(make: Make, server: WireServer) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    refusal = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "I can't help with that."}],
        "stop_reason": "refusal",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 6},
    }
    server.push(Reply.malformed(json.dumps(refusal)))

    response = await make("anthropic").complete(ask(json_schema=schema), PRICE)

    assert response.finish_reason == "content_filter"
    assert response.confidence is None
    assert server.requests[0].body["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }
