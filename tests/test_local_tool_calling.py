"""The local provider's tool calling: the rules in `tools.routing.local_tools`."""

import json

import pytest

from keel.schemas.model import Message, ModelRequest, ToolCall, ToolSpec
from keel.schemas.retrieval import Passage
from tools.routing.local import NOT_FOUND_TEXT, LocalProvider


def _schema(**properties: str) -> dict:
    return {
        "type": "object",
        "properties": {name: {"type": kind} for name, kind in properties.items()},
        "required": list(properties),
    }


CALCULATOR = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    parameters=_schema(expression="string"),
)
HTTP_GET = ToolSpec(
    name="http_get", description="Fetch a web page.", parameters=_schema(url="string")
)
CREATE_TICKET = ToolSpec(
    name="create_ticket",
    description="Open a support ticket.",
    parameters=_schema(subject="string", description="string", priority="string"),
)
UNIT_CONVERT = ToolSpec(
    name="unit_convert",
    description="Convert a value between units.",
    parameters=_schema(value="number", from_unit="string", to_unit="string"),
)
SEARCH_KNOWLEDGE = ToolSpec(
    name="search_knowledge",
    description="Search the help-centre knowledge base for articles that answer a question.",
    parameters=_schema(query="string"),
)
ALL_TOOLS = [CALCULATOR, HTTP_GET, CREATE_TICKET, UNIT_CONVERT, SEARCH_KNOWLEDGE]


def _ask(
    question: str,
    tools: list[ToolSpec] = ALL_TOOLS,
    documents: list[Passage] | None = None,
    labels: list[str] | None = None,
) -> ModelRequest:
    return ModelRequest(
        messages=[
            Message(role="system", content="You are a helpful assistant."),
            Message(role="user", content=question),
        ],
        tools=tools,
        documents=documents or [],
        labels=labels or [],
    )


def _calls(question: str, tools: list[ToolSpec] = ALL_TOOLS) -> list[tuple[str, dict]]:
    response = LocalProvider().respond(_ask(question, tools))
    return [(call.name, call.arguments) for call in response.tool_calls]


@pytest.mark.parametrize(
    ("question", "expression"),
    [
        ("what is (12.5 * 4) + 3?", "(12.5 * 4) + 3"),
        ("how much is 2^10", "2**10"),
        ("Quick one (what's 7 % 3)", "7 % 3"),
        ("compute -4 / 2.", "-4 / 2"),
    ],
)
def test_arithmetic_calls_the_calculator(question, expression):
    assert _calls(question) == [("calculator", {"expression": expression})]


def test_tool_calling_response_shape():
    response = LocalProvider().respond(_ask("what is 6 * 7?"))
    assert response.finish_reason == "tool_calls"
    assert response.text == ""
    assert response.tool_calls == [
        ToolCall(id="call_2_0", name="calculator", arguments={"expression": "6 * 7"})
    ]
    assert (response.cost_usd, response.provider, response.confidence) == (0.0, "local", None)
    assert response.usage.input_tokens == 5 + 5
    assert response.usage.output_tokens == 0


def test_numbers_without_an_operator_are_not_arithmetic():
    assert _calls("I have 3 notes and 12 folders", [CALCULATOR]) == []


def test_url_calls_http_get():
    assert _calls("Summarise https://example.com/docs/v1/2?page=3.", [HTTP_GET, CALCULATOR]) == [
        ("http_get", {"url": "https://example.com/docs/v1/2?page=3"})
    ]


@pytest.mark.parametrize(
    ("question", "subject", "priority"),
    [
        (
            "Please open a ticket: exports fail for every PDF.",
            "Please open a ticket: exports fail for every PDF.",
            "normal",
        ),
        (
            "File a bug report, sync is broken. We are blocked!",
            "File a bug report, sync is broken.",
            "high",
        ),
        (
            "Can you raise an issue ASAP? Billing page shows an error.",
            "Can you raise an issue ASAP?",
            "high",
        ),
    ],
)
def test_ticket_requests_call_create_ticket(question, subject, priority):
    assert _calls(question) == [
        ("create_ticket", {"subject": subject, "description": question, "priority": priority})
    ]


def test_ticket_subject_is_cut_to_80_characters():
    question = "Please create a ticket because " + "the export keeps failing " * 6
    [(_, arguments)] = _calls(question, [CREATE_TICKET])
    assert len(arguments["subject"]) <= 80
    assert arguments["subject"].endswith("…")
    assert question.startswith(arguments["subject"][:-1])


@pytest.mark.parametrize(
    "question",
    ["I read the bug report yesterday", "my ticket number is 42", "open the settings page"],
)
def test_ticket_needs_both_a_noun_and_a_verb(question):
    assert _calls(question, [CREATE_TICKET]) == []


@pytest.mark.parametrize(
    ("question", "arguments"),
    [
        ("convert 5 km to miles", {"value": 5, "from_unit": "km", "to_unit": "miles"}),
        ("72 F in C?", {"value": 72, "from_unit": "F", "to_unit": "C"}),
        ("what is 1.5 kg in lbs", {"value": 1.5, "from_unit": "kg", "to_unit": "lbs"}),
        (
            "Convert 3 furlongs into parsecs",
            {"value": 3, "from_unit": "furlongs", "to_unit": "parsecs"},
        ),
    ],
)
def test_unit_conversions_call_unit_convert(question, arguments):
    assert _calls(question, [UNIT_CONVERT]) == [("unit_convert", arguments)]


def test_unit_conversion_needs_known_units_or_the_word_convert():
    assert _calls("I have 3 tickets in Jira", [UNIT_CONVERT]) == []


def test_unit_convert_needs_the_expected_parameters():
    other = ToolSpec(name="unit_convert", parameters=_schema(query="string"))
    assert _calls("convert 5 km to miles", [other]) == []


def test_generic_rule_calls_search_knowledge_with_the_message():
    question = "Search the knowledge base for how to reset my password"
    assert _calls(question) == [("search_knowledge", {"query": question})]


def test_generic_rule_needs_two_shared_words():
    assert _calls("How do I reset my password?", [SEARCH_KNOWLEDGE]) == []


def test_generic_rule_needs_exactly_one_required_string():
    lookup = ToolSpec(
        name="search_orders",
        description="Search orders by customer and date.",
        parameters=_schema(customer="string", date="string"),
    )
    count = ToolSpec(
        name="count_orders",
        description="Count orders for a customer.",
        parameters=_schema(customer="integer"),
    )
    assert _calls("search orders for customer Ada", [lookup]) == []
    assert _calls("count orders for customer Ada", [count]) == []


def test_generic_rule_picks_the_best_overlap():
    weather = ToolSpec(
        name="weather",
        description="Today's weather forecast for a city.",
        parameters=_schema(city="string"),
    )
    question = "weather forecast for Paris, from the knowledge base search"
    # search_knowledge shares search, knowledg, base; weather shares weather, forecast.
    assert _calls(question, [weather, SEARCH_KNOWLEDGE]) == [
        ("search_knowledge", {"query": question})
    ]


def test_several_intents_give_several_calls_in_rule_order():
    question = (
        "Open a ticket, urgent: https://status.example.com is down. "
        "Also what is 2^8, and convert 10 km to miles?"
    )
    response = LocalProvider().respond(_ask(question))
    assert [(c.id, c.name) for c in response.tool_calls] == [
        ("call_2_0", "calculator"),
        ("call_2_1", "http_get"),
        ("call_2_2", "create_ticket"),
        ("call_2_3", "unit_convert"),
    ]
    assert response.tool_calls[0].arguments == {"expression": "2**8"}
    assert response.tool_calls[1].arguments == {"url": "https://status.example.com"}
    assert response.tool_calls[2].arguments["priority"] == "high"
    assert response.tool_calls[3].arguments == {
        "value": 10,
        "from_unit": "km",
        "to_unit": "miles",
    }


def test_calculator_and_search_knowledge_together():
    question = "What is 17 * 3, and search the knowledge base for refund policy"
    assert _calls(question) == [
        ("calculator", {"expression": "17 * 3"}),
        ("search_knowledge", {"query": question}),
    ]


def test_a_rule_needs_its_tool():
    assert _calls("what is 2 + 2? see https://example.com", [SEARCH_KNOWLEDGE]) == []


def test_arguments_that_break_the_schema_are_still_sent():
    calculator = ToolSpec(
        name="calculator",
        description="Evaluate an arithmetic expression.",
        parameters=_schema(expr="string"),
    )
    assert _calls("what is 1 + 1", [calculator]) == [("calculator", {"expression": "1 + 1"})]


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


def test_units_are_written_as_the_schemas_allowed_values():
    from keel.schemas.model import ModelRequest, ToolSpec
    from tools.routing.local import LocalProvider

    unit = {"enum": ["mm", "m", "km", "mi", "C", "F"], "type": "string"}
    tool = ToolSpec(
        name="unit_convert",
        description="Convert a value between units.",
        parameters={
            "type": "object",
            "properties": {"value": {"type": "number"}, "from_unit": unit, "to_unit": unit},
            "required": ["value", "from_unit", "to_unit"],
        },
    )
    for message, expected in [
        ("convert 5 kilometers to miles", ("km", "mi")),
        ("What is 72 fahrenheit in celsius?", ("F", "C")),
        ("convert 3 KM to m", ("km", "m")),
    ]:
        request = ModelRequest(messages=[{"role": "user", "content": message}], tools=[tool])
        (call,) = LocalProvider().respond(request).tool_calls
        assert (call.arguments["from_unit"], call.arguments["to_unit"]) == expected, message
