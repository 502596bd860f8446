"""The local provider's tool calling: choosing tools and extracting their arguments.

The rules live in `tools.models.local_tools`; answering from results is in
`test_local_tool_answers.py`.
"""

import pytest

from keel.schemas.model import ToolCall, ToolSpec
from tests.unit.tools.models._local_tools import (
    CALCULATOR,
    CREATE_TICKET,
    HTTP_GET,
    SEARCH_KNOWLEDGE,
    UNIT_CONVERT,
    _ask,
    _calls,
    _schema,
)
from tools.models.local import LocalProvider


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


def test_units_are_written_as_the_schemas_allowed_values():
    from keel.schemas.model import ModelRequest, ToolSpec
    from tools.models.local import LocalProvider

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
