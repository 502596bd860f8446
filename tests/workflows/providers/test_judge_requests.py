"""Judge requests through both adapters: the prompt, the JSON-schema reply, a malformed one."""

import pytest
from temporalio.exceptions import ApplicationError

from keel.schemas.model import JudgeInput, Judgement
from keel.testing.replies import Reply
from keel.testing.server import WireServer
from tests.workflows.providers.support import DOCS, PRICE, Make, ask
from tools.models.providers._common import JUDGE_SCHEMA

QUESTION = "How do I reset my password?"
ANSWER = "Open Settings, then Security, then choose Reset password. Passwords never expire."
JUDGE = JudgeInput(question=QUESTION, answer=ANSWER)


def _schema_sent(protocol: str, body: dict[str, object]) -> object:
    if protocol == "anthropic":
        return body["output_config"]
    return body["response_format"]


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_a_judge_reply_is_read_as_a_judgement(
    make: Make, server: WireServer, protocol: str
) -> None:
    server.push(
        Reply(text='```json\n{"verdict": "partial", "unsupported": [1], "missing": ""}\n```')
    )

    response = await make(protocol).complete(ask(QUESTION, documents=DOCS, judge=JUDGE), PRICE)

    assert response.judgement == Judgement(
        verdict="partial",
        unsupported=[1],
        sentences=[
            "Open Settings, then Security, then choose Reset password.",
            "Passwords never expire.",
        ],
    )
    assert response.judgement.kept == ["Open Settings, then Security, then choose Reset password."]
    body = server.requests[0].body
    system = body["system"] if protocol == "anthropic" else body["messages"][0]["content"]
    assert "0. Open Settings, then Security" in system and "1. Passwords never expire." in system
    assert f"Question: {QUESTION}" in system and '<document id="kb/reset#steps"' in system
    assert "Confidence:" not in system  # the reply is parsed, not read for a confidence line
    expected = (
        {"format": {"type": "json_schema", "schema": JUDGE_SCHEMA}}
        if protocol == "anthropic"
        else {"type": "json_schema", "json_schema": {"name": "Judgement", "schema": JUDGE_SCHEMA}}
    )
    assert _schema_sent(protocol, body) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Looks grounded to me.", id="prose"),
        pytest.param('{"verdict": "mostly"}', id="unknown-verdict"),
        pytest.param(
            '{"verdict": "partial", "unsupported": [5], "missing": ""}', id="no-sentence-5"
        ),
    ],
)
@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_a_malformed_judge_reply_is_a_retryable_failure(
    make: Make, server: WireServer, protocol: str, text: str
) -> None:
    server.push(Reply(text=text))

    with pytest.raises(ApplicationError) as caught:
        await make(protocol).complete(ask(QUESTION, documents=DOCS, judge=JUDGE), PRICE)

    assert caught.value.type == "MalformedResponse" and not caught.value.non_retryable
    assert "the judge's reply is not a judgement" in caught.value.message
