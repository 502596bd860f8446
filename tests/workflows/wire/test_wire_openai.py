"""`keel.testing` WireServer's OpenAI chat completions and embeddings, through the real SDK."""

import json
import math

import openai
import pytest

from keel.testing.replies import Reply, ToolCall, Usage
from tests.workflows.wire.support import OPENAI_KEY, QUESTION


def test_openai_plain_answer_reports_scripted_usage(server, oai):
    server.push(
        Reply(text="Paris.", usage=Usage(input_tokens=12, output_tokens=3, cached_tokens=8))
    )

    completion = oai.chat.completions.create(model="gpt-test", messages=QUESTION)

    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("Paris.", "stop")
    assert completion.model == "gpt-test"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 12
    assert completion.usage.completion_tokens == 3
    assert completion.usage.total_tokens == 15
    assert completion.usage.prompt_tokens_details.cached_tokens == 8


def test_openai_tool_call_arguments_parse(server, oai):
    server.push(Reply.tool_call("get_weather", {"city": "Paris", "days": [1, 2]}))

    completion = oai.chat.completions.create(model="gpt-test", messages=QUESTION)

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": [1, 2]}
    assert call.id.startswith("call_")


def test_openai_stream_assembles_text_and_ends_with_usage_chunk(server, oai):
    server.push(Reply(text="The capital is Paris.", usage=Usage(input_tokens=9, output_tokens=5)))

    chunks = list(
        oai.chat.completions.create(
            model="gpt-test",
            messages=QUESTION,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    *answer, last = chunks
    assert "".join(c.choices[0].delta.content or "" for c in answer) == "The capital is Paris."
    assert answer[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in answer)
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (9, 5)


def test_openai_stream_without_include_usage_has_no_usage_chunk(server, oai):
    chunks = list(oai.chat.completions.create(model="gpt-test", messages=QUESTION, stream=True))

    assert all(c.choices and c.usage is None for c in chunks)


async def test_async_openai_streams_tool_call_deltas(server):
    server.push(
        Reply(
            text="Checking.",
            tool_calls=(
                ToolCall(name="get_weather", arguments={"city": "Paris", "unit": "celsius"}),
                ToolCall(name="get_time", arguments={"tz": "Europe/Paris"}, id="call_fixed"),
            ),
        )
    )
    async with openai.AsyncOpenAI(
        base_url=server.openai_base_url, api_key=OPENAI_KEY, max_retries=0
    ) as client:
        stream = await client.chat.completions.create(
            model="gpt-test", messages=QUESTION, stream=True
        )
        chunks = [chunk async for chunk in stream]

    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""
    assert [c["name"] for c in calls.values()] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert calls[1]["id"] == "call_fixed"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_openai_logprobs_cover_the_answer(server, oai):
    server.push(Reply(text="Paris is the capital."))

    completion = oai.chat.completions.create(
        model="gpt-test", messages=QUESTION, logprobs=True, top_logprobs=2
    )

    tokens = completion.choices[0].logprobs.content
    assert "".join(t.token for t in tokens) == "Paris is the capital."
    assert all(t.logprob == 0.0 and t.top_logprobs for t in tokens)


def test_truncated_reply_reports_the_token_limit(server, oai, claude):
    server.push(Reply(text="Paris is", truncated=True), protocol="openai")
    server.push(Reply(text="Paris is", truncated=True), protocol="anthropic")

    completion = oai.chat.completions.create(model="gpt-test", messages=QUESTION)
    message = claude.messages.create(model="claude-test", max_tokens=2, messages=QUESTION)

    assert completion.choices[0].finish_reason == "length"
    assert message.stop_reason == "max_tokens"


def test_unscripted_usage_counts_words(oai):
    completion = oai.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "one two three"}]
    )

    assert completion.choices[0].message.content == "one two three"  # echo
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 3)


def test_invalid_request_is_refused_like_the_provider(server, oai):
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="gpt-test", messages=[])

    assert caught.value.type == "invalid_request_error"
    assert len(server.requests) == 1


# --- Embeddings --------------------------------------------------------------------------


def test_embeddings_are_deterministic_unit_vectors(oai):
    texts = ["reset my password", "refund my plan", "reset my password"]

    first = oai.embeddings.create(model="text-embedding-3-small", input=texts, dimensions=64)
    again = oai.embeddings.create(
        model="text-embedding-3-small", input=texts[0], dimensions=64, encoding_format="float"
    )
    default = oai.embeddings.create(model="text-embedding-3-small", input="x")

    a, b, c = (item.embedding for item in first.data)
    assert len(a) == 64 and len(default.data[0].embedding) == 1536
    assert a == c == again.data[0].embedding  # base64 (the SDK default) and float agree
    assert a != b
    assert math.isclose(math.fsum(x * x for x in a), 1.0, rel_tol=1e-5)
    assert first.usage.prompt_tokens == 9
