"""`keel.testing` WireServer starting and stopping as an async context manager."""

import openai
import pytest

from keel.testing.server import WireServer
from tests.workflows.wire.support import OPENAI_KEY, QUESTION


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
