"""`keel.testing` WireServer's Anthropic messages, through the real SDK."""

import anthropic

from keel.testing.replies import Reply, ToolCall, Usage
from tests.workflows.wire.support import ANTHROPIC_KEY, QUESTION


def test_anthropic_plain_answer_reports_scripted_usage(server, claude):
    server.push(
        Reply(text="Paris.", usage=Usage(input_tokens=20, output_tokens=4, cached_tokens=6))
    )

    message = claude.messages.create(model="claude-test", max_tokens=64, messages=QUESTION)

    assert [block.text for block in message.content] == ["Paris."]
    assert message.stop_reason == "end_turn"
    assert message.model == "claude-test"
    assert message.usage.input_tokens == 20
    assert message.usage.output_tokens == 4
    assert message.usage.cache_read_input_tokens == 6


def test_anthropic_tool_use_block(server, claude):
    server.push(
        Reply(
            text="Let me check.",
            tool_calls=(ToolCall(name="get_weather", arguments={"city": "Paris"}),),
        )
    )

    message = claude.messages.create(model="claude-test", max_tokens=64, messages=QUESTION)

    text, tool = message.content
    assert (text.type, text.text) == ("text", "Let me check.")
    assert (tool.type, tool.name, tool.input) == ("tool_use", "get_weather", {"city": "Paris"})
    assert tool.id.startswith("toolu_")
    assert message.stop_reason == "tool_use"


def test_anthropic_stream_helper_builds_the_final_message(server, claude):
    server.push(
        Reply(
            text="The capital is Paris.",
            tool_calls=(ToolCall(name="lookup", arguments={"q": "capital of France", "n": 3}),),
            usage=Usage(input_tokens=30, output_tokens=11, cached_tokens=10),
        )
    )

    with claude.messages.stream(model="claude-test", max_tokens=64, messages=QUESTION) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert streamed == "The capital is Paris."
    text, tool = final.content
    assert text.text == "The capital is Paris."
    assert (tool.name, tool.input) == ("lookup", {"q": "capital of France", "n": 3})
    assert final.stop_reason == "tool_use"
    assert final.usage.input_tokens == 30
    assert final.usage.output_tokens == 11
    assert final.usage.cache_read_input_tokens == 10


async def test_async_anthropic_stream(server):
    server.push(Reply(text="Bonjour de Paris.", usage=Usage(input_tokens=5, output_tokens=4)))
    async with anthropic.AsyncAnthropic(
        base_url=server.anthropic_base_url, api_key=ANTHROPIC_KEY, max_retries=0
    ) as client:
        async with client.messages.stream(
            model="claude-test", max_tokens=64, messages=QUESTION
        ) as stream:
            final = await stream.get_final_message()

    assert final.content[0].text == "Bonjour de Paris."
    assert (final.usage.input_tokens, final.usage.output_tokens) == (5, 4)
