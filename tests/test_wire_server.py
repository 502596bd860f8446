"""`keel.testing.server.WireServer` through the real OpenAI and Anthropic SDKs (never patched)."""

import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import anthropic
import httpx2
import openai
import pytest

from keel.devserver import free_port
from keel.testing.recording import WireRequest
from keel.testing.replies import Reply, ToolCall, Usage
from keel.testing.server import WireServer

OPENAI_KEY = "sk-test-openai-secret"
ANTHROPIC_KEY = "sk-ant-test-secret"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def server() -> Iterator[WireServer]:
    with WireServer() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(server: WireServer) -> None:
    server.reset()


@pytest.fixture
def oai(server: WireServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=server.openai_base_url, api_key=OPENAI_KEY, max_retries=0
    ) as client:
        yield client


@pytest.fixture
def claude(server: WireServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=server.anthropic_base_url, api_key=ANTHROPIC_KEY, max_retries=0
    ) as client:
        yield client


@pytest.fixture
def ask(oai: openai.OpenAI, claude: anthropic.Anthropic) -> Callable[..., Callable[[], object]]:
    """`ask(protocol, timeout=None)`: a call that sends QUESTION with that protocol's SDK."""

    def make(protocol: str, timeout: float | None = None) -> Callable[[], object]:
        if protocol == "openai":
            client = oai.with_options(timeout=timeout) if timeout else oai
            return lambda: client.chat.completions.create(model="gpt-test", messages=QUESTION)
        sdk = claude.with_options(timeout=timeout) if timeout else claude
        return lambda: sdk.messages.create(model="claude-test", max_tokens=64, messages=QUESTION)

    return make


# --- OpenAI chat completions -------------------------------------------------------------


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


# --- Anthropic messages ------------------------------------------------------------------


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


# --- Faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "error", "kind"),
    [
        ("openai", openai.RateLimitError, "rate_limit_exceeded"),
        ("anthropic", anthropic.RateLimitError, "rate_limit_error"),
    ],
)
def test_rate_limit_carries_retry_after(server, ask, protocol, error, kind):
    server.push(Reply.rate_limited(retry_after=2))

    with pytest.raises(error) as caught:
        ask(protocol)()

    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.request_id == "req_keel0001"
    body_kind = caught.value.code if protocol == "openai" else caught.value.type
    assert body_kind == kind
    assert len(server.requests) == 1  # max_retries=0: one call reached the provider


@pytest.mark.parametrize(
    ("protocol", "status", "error"),
    [
        ("openai", 500, openai.InternalServerError),
        ("anthropic", 500, anthropic.InternalServerError),
        ("openai", 503, openai.InternalServerError),
        ("anthropic", 503, anthropic.ServiceUnavailableError),
        ("openai", 401, openai.AuthenticationError),
        ("anthropic", 401, anthropic.AuthenticationError),
        ("openai", 400, openai.BadRequestError),
        ("anthropic", 400, anthropic.BadRequestError),
    ],
)
def test_http_errors_raise_the_sdk_error(server, ask, protocol, status, error):
    server.push(Reply.error(status, "scripted failure"))

    with pytest.raises(error) as caught:
        ask(protocol)()

    assert caught.value.status_code == status
    assert "scripted failure" in str(caught.value)


@pytest.mark.parametrize(
    ("protocol", "error"),
    [("openai", openai.APITimeoutError), ("anthropic", anthropic.APITimeoutError)],
)
def test_slow_reply_times_the_client_out(server, ask, protocol, error):
    server.push(Reply.slow(2.0, then=Reply(text="too late")))
    started = time.monotonic()

    with pytest.raises(error):
        ask(protocol, timeout=0.3)()

    assert time.monotonic() - started < 1.5
    server.push(Reply(text="on time"))
    assert ask(protocol)() is not None  # the server was not held up by the abandoned request


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_malformed_json_raises_a_plain_json_error(server, ask, protocol):
    server.push(Reply.malformed())

    # Neither SDK wraps this: a stdlib JSONDecodeError, not an APIError, reaches the caller.
    with pytest.raises(json.JSONDecodeError):
        ask(protocol)()


def test_stream_cut_midway(server, oai, claude):
    server.push(Reply.cut(3, then=Reply(text="one two three four five")), protocol="openai")
    server.push(Reply.cut(4, then=Reply(text="one two three four five")), protocol="anthropic")

    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai.chat.completions.create(model="gpt-test", messages=QUESTION, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one two "

    # The Anthropic SDK lets the transport error through unwrapped.
    with pytest.raises(httpx2.RemoteProtocolError):
        with claude.messages.stream(model="claude-test", max_tokens=64, messages=QUESTION) as s:
            s.get_final_message()


def test_responder_failure_is_a_500(server, oai):
    def broken(request: WireRequest) -> Reply:
        raise RuntimeError("bug in the test's responder")

    server.script.responder = broken

    with pytest.raises(openai.InternalServerError, match="bug in the test's responder"):
        oai.chat.completions.create(model="gpt-test", messages=QUESTION)


# --- Scripting and recording -------------------------------------------------------------


def test_replies_are_scripted_per_model_and_protocol(server, oai, claude):
    server.push(Reply(text="from the big model"), model="gpt-big")
    server.push(Reply(text="small, openai only"), protocol="openai", model="gpt-small")
    server.push(Reply(text="any anthropic"), protocol="anthropic")

    def openai_says(model: str) -> str | None:
        completion = oai.chat.completions.create(model=model, messages=QUESTION)
        return completion.choices[0].message.content

    assert openai_says("gpt-small") == "small, openai only"
    assert openai_says("gpt-big") == "from the big model"
    assert openai_says("gpt-big") == QUESTION[0]["content"]  # queue empty: the echo answers
    message = claude.messages.create(model="gpt-small", max_tokens=64, messages=QUESTION)
    assert message.content[0].text == "any anthropic"
    assert server.script.pending == 0


def test_responder_answers_by_content(server, oai, claude):
    def capitals(request: WireRequest) -> Reply:
        answer = "Paris" if "France" in request.prompt else "I don't know"
        return Reply(text=f"{answer} ({request.protocol})")

    server.script.responder = capitals

    completion = oai.chat.completions.create(model="gpt-test", messages=QUESTION)
    message = claude.messages.create(
        model="claude-test",
        max_tokens=64,
        messages=[{"role": "user", "content": [{"type": "text", "text": "Capital of Peru?"}]}],
    )

    assert completion.choices[0].message.content == "Paris (openai)"
    assert message.content[0].text == "I don't know (anthropic)"
    server.reset()
    assert server.script.responder is not capitals


def test_recorded_requests_hide_keys(server, oai, claude):
    oai.chat.completions.create(
        model="gpt-test", messages=QUESTION, extra_headers={"Idempotency-Key": "run-1/step-2"}
    )
    claude.messages.create(
        model="claude-test",
        max_tokens=64,
        messages=QUESTION,
        extra_headers={"x-api-key": ANTHROPIC_KEY},
    )

    first, second = server.requests
    assert (first.protocol, first.path, first.model) == (
        "openai",
        "/v1/chat/completions",
        "gpt-test",
    )
    assert (second.protocol, second.path) == ("anthropic", "/v1/messages")
    assert first.headers["authorization"] == "***"
    assert second.headers["x-api-key"] == "***"
    assert first.idempotency_key == "run-1/step-2"
    assert second.idempotency_key is None
    assert first.body["messages"] == QUESTION
    recorded = repr(server.requests)
    assert OPENAI_KEY not in recorded and ANTHROPIC_KEY not in recorded


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


# --- Lifecycle ---------------------------------------------------------------------------


async def test_async_context_manager_serves_then_frees_the_port():
    async with WireServer() as server:
        async with openai.AsyncOpenAI(
            base_url=server.openai_base_url, api_key=OPENAI_KEY, max_retries=0
        ) as client:
            completion = await client.chat.completions.create(model="m", messages=QUESTION)
            assert completion.choices[0].message.content == QUESTION[0]["content"]

    async with openai.AsyncOpenAI(
        base_url=server.openai_base_url, api_key=OPENAI_KEY, max_retries=0
    ) as client:
        with pytest.raises(openai.APIConnectionError):
            await client.chat.completions.create(model="m", messages=QUESTION)


def test_cli_serves_the_echo_until_interrupted():
    port = free_port()
    command = [sys.executable, "-m", "keel.testing", "--port", str(port)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().split() == [
            "OpenAI",
            "base_url:",
            f"http://127.0.0.1:{port}/v1",
        ]
        with openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key=OPENAI_KEY, max_retries=0
        ) as client:
            completion = client.chat.completions.create(model="m", messages=QUESTION)
        process.send_signal(signal.SIGINT)
        output, errors = process.communicate(timeout=10)

    assert completion.choices[0].message.content == QUESTION[0]["content"]
    assert process.returncode == 0
    assert "POST /v1/chat/completions" in output  # uvicorn's access log
    assert "Traceback" not in errors
