"""`keel.testing` WireServer as a CLI: `python -m keel.testing` serves until interrupted."""

import signal
import subprocess
import sys

import openai

from keel.net import free_port
from tests.workflows.wire.support import OPENAI_KEY, QUESTION


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
