"""`keel.testing` WireServer's reply scripting and request recording."""

from keel.testing.recording import WireRequest
from keel.testing.replies import Reply
from tests.workflows.wire.support import ANTHROPIC_KEY, OPENAI_KEY, QUESTION


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
