"""The local provider's tool calling: answering from tool results, and fallbacks.

The rules live in `tools.models.local_tools`; choosing tools is in
`test_local_tool_intents.py`.
"""

import json

from keel.schemas.model import Message, ModelRequest, ToolCall
from keel.schemas.retrieval import Passage
from tests.unit.tools.models._local_tools import CALCULATOR, HTTP_GET, SEARCH_KNOWLEDGE, _ask
from tools.models.local import NOT_FOUND_TEXT, LocalProvider


def test_no_intent_without_documents_names_the_tools():
    response = LocalProvider().respond(_ask("tell me a joke", [CALCULATOR, HTTP_GET]))
    assert response.tool_calls == []
    assert response.finish_reason == "stop"
    assert response.text == "No tool matched this request. Available tools: calculator, http_get."
    assert response.confidence == 0.0


def test_no_intent_with_documents_answers_from_them():
    docs = [
        Passage(
            id="pw#1",
            document_id="pw",
            title="Passwords",
            text="Reset your password from the sign-in page.",
        )
    ]
    response = LocalProvider().respond(_ask("reset password", [CALCULATOR], docs))
    assert response.tool_calls == []
    assert response.text == "Reset your password from the sign-in page."
    assert response.citations == ["pw#1"]


def test_no_intent_with_labels_classifies():
    labels = ["billing: refund invoice", "other"]
    response = LocalProvider().respond(_ask("I want a refund", [CALCULATOR], labels=labels))
    assert (response.label, response.tool_calls) == ("billing", [])


def test_no_intent_with_documents_but_no_evidence_is_not_found():
    docs = [Passage(id="a#1", document_id="a", title="Doc", text="Exports arrive by email.")]
    response = LocalProvider().respond(_ask("weather in Paris", [CALCULATOR], docs))
    assert (response.text, response.tool_calls) == (NOT_FOUND_TEXT, [])


def _after(calls: list[ToolCall], results: list[Message]) -> ModelRequest:
    return ModelRequest(
        messages=[
            Message(role="user", content="what is 6 * 7 and fetch https://example.com"),
            Message(role="assistant", tool_calls=calls),
            *results,
        ],
        tools=[CALCULATOR, HTTP_GET],
    )


CALLS = [
    ToolCall(id="call_1_0", name="calculator", arguments={"expression": "6 * 7"}),
    ToolCall(id="call_1_1", name="http_get", arguments={"url": "https://example.com"}),
]


def test_answers_from_successful_tool_results_without_calling_again():
    request = _after(
        CALLS,
        [
            Message(
                role="tool", tool_call_id="call_1_1", content='{"status": 200,\n "title": "Ex"}'
            ),
            Message(role="tool", tool_call_id="call_1_0", content=json.dumps({"result": 42})),
        ],
    )
    response = LocalProvider().respond(request)
    assert response.tool_calls == []
    assert response.finish_reason == "stop"
    assert response.text == 'calculator: {"result": 42}\nhttp_get: {"status": 200, "title": "Ex"}'
    assert response.confidence == 1.0
    assert response.usage.output_tokens == len(response.text.split())
    assert response.cost_usd == 0.0


def test_an_error_result_lowers_confidence_and_does_not_loop():
    request = _after(
        CALLS[:1],
        [
            Message(
                role="tool",
                tool_call_id="call_1_0",
                content="error: invalid arguments: expression: Field required",
            )
        ],
    )
    response = LocalProvider().respond(request)
    assert response.tool_calls == []
    assert response.finish_reason == "stop"
    assert response.text == "calculator: error: invalid arguments: expression: Field required"
    assert response.confidence == 0.3


def test_string_results_render_as_text_and_long_results_are_cut():
    request = _after(
        CALLS,
        [
            Message(role="tool", tool_call_id="call_1_0", content='"forty-two"'),
            Message(role="tool", tool_call_id="call_1_1", content="word " * 300),
        ],
    )
    lines = LocalProvider().respond(request).text.split("\n")
    assert lines[0] == "calculator: forty-two"
    assert lines[1].startswith("http_get: word word")
    assert len(lines[1]) == len("http_get: ") + 500
    assert lines[1].endswith("…")


def test_a_missing_result_counts_as_a_failure():
    request = _after(
        CALLS, [Message(role="tool", tool_call_id="call_1_0", content='{"result": 42}')]
    )
    response = LocalProvider().respond(request)
    assert response.text == 'calculator: {"result": 42}\nhttp_get: no result'
    assert response.confidence == 0.3


def test_results_without_ids_match_calls_by_position():
    request = _after(
        CALLS,
        [Message(role="tool", content="42"), Message(role="tool", content='"<html>"')],
    )
    assert LocalProvider().respond(request).text == "calculator: 42\nhttp_get: <html>"


def test_a_new_user_turn_after_results_may_call_tools_again():
    request = _after(CALLS[:1], [Message(role="tool", tool_call_id="call_1_0", content="42")])
    request.messages.append(Message(role="assistant", content="calculator: 42"))
    request.messages.append(Message(role="user", content="and 42 / 6?"))
    response = LocalProvider().respond(request)
    assert [(c.id, c.arguments) for c in response.tool_calls] == [
        ("call_5_0", {"expression": "42 / 6"})
    ]


async def test_a_tool_loop_ends_with_an_answer():
    """Drive the assistant loop with fake tools until the provider answers."""
    tools = {
        "calculator": lambda args: json.dumps({"result": {"3 * (2 + 5)": 21}[args["expression"]]}),
        "search_knowledge": lambda args: "error: knowledge base offline",
    }
    messages = [Message(role="user", content="what is 3 * (2 + 5)? search the knowledge base")]
    provider = LocalProvider()
    for _ in range(3):
        response = await provider.complete(
            ModelRequest(messages=messages, tools=[CALCULATOR, SEARCH_KNOWLEDGE])
        )
        if response.finish_reason != "tool_calls":
            break
        messages.append(Message(role="assistant", tool_calls=response.tool_calls))
        messages += [
            Message(role="tool", tool_call_id=c.id, content=tools[c.name](c.arguments))
            for c in response.tool_calls
        ]
    assert len(messages) == 4
    assert response.text == (
        'calculator: {"result": 21}\nsearch_knowledge: error: knowledge base offline'
    )
    assert response.confidence == 0.3
