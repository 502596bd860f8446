"""Shared parts of the local tool-calling tests: tool specs and request builders."""

from keel.schemas.model import Message, ModelRequest, ToolSpec
from keel.schemas.retrieval import Passage
from tools.models.local import LocalProvider


def _schema(**properties: str) -> dict:
    return {
        "type": "object",
        "properties": {name: {"type": kind} for name, kind in properties.items()},
        "required": list(properties),
    }


CALCULATOR = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    parameters=_schema(expression="string"),
)
HTTP_GET = ToolSpec(
    name="http_get", description="Fetch a web page.", parameters=_schema(url="string")
)
CREATE_TICKET = ToolSpec(
    name="create_ticket",
    description="Open a support ticket.",
    parameters=_schema(subject="string", description="string", priority="string"),
)
UNIT_CONVERT = ToolSpec(
    name="unit_convert",
    description="Convert a value between units.",
    parameters=_schema(value="number", from_unit="string", to_unit="string"),
)
SEARCH_KNOWLEDGE = ToolSpec(
    name="search_knowledge",
    description="Search the help-centre knowledge base for articles that answer a question.",
    parameters=_schema(query="string"),
)
ALL_TOOLS = [CALCULATOR, HTTP_GET, CREATE_TICKET, UNIT_CONVERT, SEARCH_KNOWLEDGE]


def _ask(
    question: str,
    tools: list[ToolSpec] = ALL_TOOLS,
    documents: list[Passage] | None = None,
    labels: list[str] | None = None,
) -> ModelRequest:
    return ModelRequest(
        messages=[
            Message(role="system", content="You are a helpful assistant."),
            Message(role="user", content=question),
        ],
        tools=tools,
        documents=documents or [],
        labels=labels or [],
    )


def _calls(question: str, tools: list[ToolSpec] = ALL_TOOLS) -> list[tuple[str, dict]]:
    response = LocalProvider().respond(_ask(question, tools))
    return [(call.name, call.arguments) for call in response.tool_calls]
