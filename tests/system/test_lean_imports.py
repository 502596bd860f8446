"""What each process loads: the API no LangGraph, the worker no PyTorch, no unused SDK.

Each check runs in a fresh interpreter, because this one may hold those libraries already.
"""

import importlib.util

from keel.testing.stack import fresh_python


def test_the_api_and_its_agent_catalog_load_no_langgraph() -> None:
    lines = fresh_python(
        "import sys\n"
        "from api.app import create_app\n"
        "from keel.agents import agent_catalog\n"
        "from keel.temporal.connection import keel_data_converter\n"
        "from keel.temporal.plugin import KeelPlugin\n"
        "from keel.settings import Settings\n"
        "create_app(Settings())\n"
        "KeelPlugin(data_converter=keel_data_converter(Settings()))\n"
        "print(sorted(agent_catalog()))\n"
        "print(sorted({'langgraph', 'langchain_core', 'workflows.agent'} & set(sys.modules)))\n"
    )
    assert lines[0] == str(sorted(["assistant", "support", "tally"]))
    assert lines[1] == "[]"


def test_pii_detection_loads_no_pytorch_and_leaves_it_importable() -> None:
    lines = fresh_python(
        "import importlib.util, sys\n"
        "from tools.guards.pii import PiiDetector\n"
        "hits = PiiDetector(['EMAIL_ADDRESS'], 0.4).find('write to ana@example.com')\n"
        "print(len(hits), sorted({'torch', 'transformers'} & set(sys.modules)))\n"
        "print(importlib.util.find_spec('torch') is not None)\n"
    )
    assert lines == ["1 []", str(importlib.util.find_spec("torch") is not None)]


def test_a_worker_on_the_local_model_loads_no_provider_sdk() -> None:
    lines = fresh_python(
        "import sys\n"
        "import worker.main\n"
        "from keel.settings import Settings\n"
        "from tools.models.activities import ModelActivities\n"
        "ModelActivities.from_settings(Settings())\n"
        "print(sorted({'openai', 'anthropic', 'torch'} & set(sys.modules)))\n"
    )
    assert lines == ["[]"]
