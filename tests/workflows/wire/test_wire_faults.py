"""`keel.testing` WireServer's scripted faults, as the real OpenAI and Anthropic SDKs see them."""

import json
import time

import anthropic
import openai
import pytest

from keel.testing.recording import WireRequest
from keel.testing.replies import Reply
from tests.workflows.wire.support import QUESTION


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

    # The Anthropic SDK wraps the transport error, as the OpenAI SDK does.
    with pytest.raises(anthropic.APIConnectionError):
        with claude.messages.stream(model="claude-test", max_tokens=64, messages=QUESTION) as s:
            s.get_final_message()


def test_responder_failure_is_a_500(server, oai):
    def broken(request: WireRequest) -> Reply:
        raise RuntimeError("bug in the test's responder")

    server.script.responder = broken

    with pytest.raises(openai.InternalServerError, match="bug in the test's responder"):
        oai.chat.completions.create(model="gpt-test", messages=QUESTION)
