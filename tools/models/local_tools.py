"""Tool calling for the keyless ``local`` provider: fixed intent rules, not a language model.

The local provider does not understand requests. When a request offers tools it looks
for a few fixed patterns in the last user message (`ModelRequest.question`), and when a
request ends with tool results it lists them. That is all; these rules are the whole of
its "reasoning", and they are deterministic.

Calling tools (only when ``request.tools`` is non-empty and the last message is not a
``tool`` message). The rules run in this order; each adds at most one call, so every
matching rule gives one call (independent calls, in this order) and no tool is called
twice in one response:

1. Arithmetic, for a tool named ``calculator``. URLs are removed from the message first.
   A candidate is a maximal run of digits, whitespace and ``. + - * / ^ % ( )``; it is
   trimmed of whitespace, of trailing operators and dots, and of unmatched parentheses
   at either end. The first candidate holding an operator between two operands (a digit
   or ``)`` before it, a digit, ``.``, ``(`` or ``-`` after it) is the expression:
   ``{"expression": <expression with ^ written as **>}``. So "what is (12.5 * 4) + 3?"
   gives ``(12.5 * 4) + 3`` and "how much is 2^10" gives ``2**10``.
2. A URL, for a tool named ``http_get``: the first ``http://`` or ``https://`` URL,
   without trailing ``. , ; : ! ?``: ``{"url": <url>}``.
3. A ticket, for a tool named ``create_ticket``: the message names a ticket (the words
   ticket, tickets, issue, issues, or the phrase bug report(s)) and, outside that phrase,
   has one of the verbs in `_TICKET_VERBS` (create, open, file, raise, report and their
   -s, -ed and -ing forms). The call is ``{"subject": <the message's first sentence, at
   most 80 characters, cut at a word and ended with "…" when longer>, "description":
   <the message>, "priority": "high"}`` when one of the words urgent, asap, critical or
   blocked appears, else with ``"priority": "normal"``.
4. A unit conversion, for the first tool (whatever its name) whose parameters schema has
   the properties ``value``, ``from_unit`` and ``to_unit``: the first "<number> <unit>
   to|in|into|as <unit>" in the message (URLs removed; a unit is one word of letters and
   ``/``, optionally after ``°``), when the message has the word convert (any form) or
   conversion, or both units are in `_KNOWN_UNITS`. So "convert 5 km to miles" and "72 F
   in C" match, "3 tickets in Jira" does not. The call is ``{"value": <the number, an
   int unless it has a decimal point>, "from_unit": <unit>, "to_unit": <unit>}``, units
   as written without ``°`` — except that when the schema lists a unit field's allowed
   values (``enum``), a unit is written as the allowed value it names: the same letters
   in another case, or the symbol of a spelled-out unit (miles → mi, celsius → C).
5. Generic, for every tool not named in rules 1-4: a tool's score is the number of
   distinct tokens (`tools.text.tokenize`) of the message found among the tokens of the
   tool's name and description. The best-scoring tool, ties going to the earliest, is
   called when its score is at least 2 and its parameters schema requires exactly one
   property, of type ``string``: ``{<that property>: <the message>}``. This is how
   ``search_knowledge`` (parameter ``query``) is called.

Arguments are not checked against the tool's schema beyond what is said above. A call
whose arguments break the schema is still made: the runtime validates them and sends the
error back as the tool's result, and the provider then answers (below) instead of trying
again. Call ids are ``call_<number of messages>_<index of the call>``.

When no rule matches, the provider answers as it would without tools (a label, or
sentences from the documents); with neither labels nor documents it says that no tool
matched and names the tools offered (`no_tool_text`), with confidence 0.

Answering from tool results (whenever the last message is a ``tool`` message, tools
offered or not). No tool is called again. The trailing ``tool`` messages answer the
calls of the last assistant message before them; a result is matched to its call by
``tool_call_id``, else by position among the results that match no call. The answer has
one line per call, in call order, ``<tool name>: <result>``, where the result is the
JSON content rendered on one line (a JSON string as itself, non-JSON content with its
whitespace collapsed), cut to 500 characters; a call with no result reads ``<tool
name>: no result``. A result is an error when its content starts with ``error:``.
Confidence is 1.0 when every call has a result and none is an error, else 0.3.
"""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import JsonValue

from keel.schemas.model import Message, ModelRequest, ToolCall, ToolSpec
from tools.text import split_sentences, tokenize

__all__ = [
    "ToolAnswer",
    "answer_from_tool_results",
    "ends_with_tool_results",
    "no_tool_text",
    "plan_tool_calls",
]

_CALCULATOR = "calculator"
_HTTP_GET = "http_get"
_CREATE_TICKET = "create_ticket"
_NAMED = frozenset({_CALCULATOR, _HTTP_GET, _CREATE_TICKET})

_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?"

_EXPRESSION_RUN = re.compile(r"[\d\s.+\-*/^%()]+")
_BINARY_OPERATION = re.compile(r"[\d)]\s*[-+*/^%]\s*[\d.(\-]")
_EXPRESSION_TRAILING = " \t\n+-*/^%."

_WORDS = re.compile(r"[a-z]+")
_BUG_REPORT = re.compile(r"\bbug\s+reports?\b", re.IGNORECASE)
_TICKET_NOUNS = frozenset({"ticket", "tickets", "issue", "issues"})
_TICKET_VERBS = frozenset(
    f"{stem}{ending}"
    for stem, endings in {
        "create": ("", "s", "d"),
        "creat": ("ing",),
        "open": ("", "s", "ed", "ing"),
        "file": ("", "s", "d"),
        "fil": ("ing",),
        "raise": ("", "s", "d"),
        "rais": ("ing",),
        "report": ("", "s", "ed", "ing"),
    }.items()
    for ending in endings
)
_URGENT = frozenset({"urgent", "asap", "critical", "blocked"})
_SUBJECT_CHARS = 80

_CONVERSION = re.compile(
    r"(?<![\w.])(?P<value>[-+]?\d+(?:\.\d+)?)\s*°?\s*(?P<from>[a-z][a-z/]*)"
    r"\s+(?:to|in|into|as)\s+°?(?P<to>[a-z][a-z/]*)",
    re.IGNORECASE,
)
_CONVERT_WORD = re.compile(r"\bconver(?:t|ts|ted|ting|sion)\b", re.IGNORECASE)
_UNIT_FIELDS = ("value", "from_unit", "to_unit")
_KNOWN_UNITS = frozenset(
    """
    mm cm m km in inch inches ft foot feet yd yard yards mi mile miles
    millimeter millimeters millimetre millimetres centimeter centimeters centimetre
    centimetres meter meters metre metres kilometer kilometers kilometre kilometres
    mg g kg t gram grams kilogram kilograms lb lbs pound pounds oz ounce ounces
    ton tons tonne tonnes stone stones
    c f k celsius fahrenheit kelvin
    ml l liter liters litre litres gal gallon gallons cup cups pint pints quart quarts
    s sec secs second seconds min mins minute minutes h hr hrs hour hours
    day days week weeks
    mph kph km/h m/s
    b kb mb gb tb byte bytes kilobyte kilobytes megabyte megabytes gigabyte gigabytes
    terabyte terabytes
    """.split()
)

_UNIT_SYMBOLS = {
    **dict.fromkeys(("inch", "inches"), "in"),
    **dict.fromkeys(("foot", "feet"), "ft"),
    **dict.fromkeys(("yard", "yards"), "yd"),
    **dict.fromkeys(("mile", "miles"), "mi"),
    **dict.fromkeys(("millimeter", "millimeters", "millimetre", "millimetres"), "mm"),
    **dict.fromkeys(("centimeter", "centimeters", "centimetre", "centimetres"), "cm"),
    **dict.fromkeys(("meter", "meters", "metre", "metres"), "m"),
    **dict.fromkeys(("kilometer", "kilometers", "kilometre", "kilometres"), "km"),
    **dict.fromkeys(("gram", "grams"), "g"),
    **dict.fromkeys(("kilogram", "kilograms"), "kg"),
    **dict.fromkeys(("pound", "pounds", "lbs"), "lb"),
    **dict.fromkeys(("ounce", "ounces"), "oz"),
    **dict.fromkeys(("tonne", "tonnes"), "t"),
    "celsius": "c",
    "fahrenheit": "f",
    "kelvin": "k",
}
"""Spelled-out units and their symbols (matched against an enum without regard to case)."""

_GENERIC_MIN_OVERLAP = 2
_RESULT_CHARS = 500
_ERROR_PREFIX = "error:"
_ALL_OK_CONFIDENCE = 1.0
_ERROR_CONFIDENCE = 0.3


@dataclass(frozen=True)
class ToolAnswer:
    """The answer written from tool results."""

    text: str
    """One ``<tool name>: <result>`` line per call."""
    confidence: float
    """1.0 when every call succeeded, 0.3 otherwise."""


def ends_with_tool_results(request: ModelRequest) -> bool:
    """Whether the request's last message is a tool result, so the provider must answer.

    Args:
        request: The normalised model request.

    Returns:
        True when the last message has the role ``tool``.

    """
    return request.messages[-1].role == "tool"


def plan_tool_calls(request: ModelRequest) -> list[ToolCall]:
    """The tool calls the rules in the module docstring ask for, in rule order.

    Args:
        request: The normalised model request; its tools and last user message are read.

    Returns:
        One call per matching rule, none when the request offers no tools or ends with
        tool results.

    """
    if not request.tools or ends_with_tool_results(request):
        return []
    message = request.question
    tools = {tool.name: tool for tool in request.tools}
    without_urls = _URL.sub(" ", message)
    planned: list[tuple[str, dict[str, JsonValue]]] = []
    if _CALCULATOR in tools and (expression := _expression(without_urls)):
        planned.append((_CALCULATOR, {"expression": expression}))
    if _HTTP_GET in tools and (url := _url(message)):
        planned.append((_HTTP_GET, {"url": url}))
    if _CREATE_TICKET in tools and _asks_for_ticket(message):
        planned.append((_CREATE_TICKET, _ticket(message)))
    unit_tool = next((t for t in request.tools if _has_properties(t, _UNIT_FIELDS)), None)
    if unit_tool is not None and (conversion := _conversion(without_urls)):
        planned.append((unit_tool.name, _fit_units(unit_tool, conversion)))
    ruled = _NAMED | ({unit_tool.name} if unit_tool else set())
    if generic := _generic(message, [t for t in request.tools if t.name not in ruled]):
        planned.append(generic)
    turn = len(request.messages)
    return [
        ToolCall(id=f"call_{turn}_{i}", name=name, arguments=arguments)
        for i, (name, arguments) in enumerate(planned)
    ]


def no_tool_text(tools: Sequence[ToolSpec]) -> str:
    """The plain answer when tools are offered but no rule matched and nothing else helps.

    Args:
        tools: The tools the request offers.

    Returns:
        A sentence saying no tool matched, naming the tools.

    """
    names = ", ".join(tool.name for tool in tools)
    return f"No tool matched this request. Available tools: {names}."


def answer_from_tool_results(messages: Sequence[Message]) -> ToolAnswer:
    """List the trailing tool results against the calls they answer.

    Args:
        messages: The conversation, ending with one or more ``tool`` messages.

    Returns:
        One ``<tool name>: <result>`` line per call and the confidence from the module
        docstring.

    """
    start = len(messages)
    while start > 0 and messages[start - 1].role == "tool":
        start -= 1
    results = list(messages[start:])
    calls = next((m.tool_calls for m in reversed(messages[:start]) if m.role == "assistant"), [])
    call_ids = {call.id for call in calls}
    by_id = {m.tool_call_id: m for m in results if m.tool_call_id in call_ids}
    unclaimed = [m for m in results if m.tool_call_id not in call_ids]
    pairs: list[tuple[str, Message | None]] = []
    for call in calls:
        result = by_id.get(call.id) or (unclaimed.pop(0) if unclaimed else None)
        pairs.append((call.name, result))
    pairs.extend((m.tool_call_id or "tool", m) for m in unclaimed)
    lines: list[str] = []
    all_ok = True
    for name, result in pairs:
        if result is None:
            lines.append(f"{name}: no result")
            all_ok = False
            continue
        if result.content.startswith(_ERROR_PREFIX):
            all_ok = False
        lines.append(f"{name}: {_render(result.content)}")
    confidence = _ALL_OK_CONFIDENCE if all_ok else _ERROR_CONFIDENCE
    return ToolAnswer(text="\n".join(lines), confidence=confidence)


def _expression(text: str) -> str | None:
    for run in _EXPRESSION_RUN.findall(text):
        candidate = _trim_expression(run)
        if _BINARY_OPERATION.search(candidate):
            return candidate.replace("^", "**")
    return None


def _trim_expression(run: str) -> str:
    candidate = run.strip().rstrip(_EXPRESSION_TRAILING).strip()
    # A run can swallow the parenthesis that opens or closes surrounding prose,
    # as in "(about 2 + 2)"; drop unmatched ones at the ends.
    while True:
        opened, closed = candidate.count("("), candidate.count(")")
        if opened > closed and candidate.startswith("("):
            candidate = candidate[1:].strip()
        elif closed > opened and candidate.endswith(")"):
            candidate = candidate[:-1].rstrip(_EXPRESSION_TRAILING).strip()
        else:
            return candidate


def _url(text: str) -> str | None:
    match = _URL.search(text)
    return match.group(0).rstrip(_URL_TRAILING) if match else None


def _asks_for_ticket(text: str) -> bool:
    lowered = text.lower()
    rest = _BUG_REPORT.sub(" ", lowered)
    words = set(_WORDS.findall(rest))
    names_ticket = rest != lowered or bool(words & _TICKET_NOUNS)
    return names_ticket and bool(words & _TICKET_VERBS)


def _ticket(text: str) -> dict[str, JsonValue]:
    sentences = split_sentences(text)
    subject = sentences[0] if sentences else text.strip()
    if len(subject) > _SUBJECT_CHARS:
        cut = subject[: _SUBJECT_CHARS - 1]
        cut = cut.rsplit(" ", 1)[0] if " " in cut else cut
        subject = cut.rstrip(" ,;:-") + "…"
    urgent = bool(set(_WORDS.findall(text.lower())) & _URGENT)
    return {"subject": subject, "description": text, "priority": "high" if urgent else "normal"}


def _conversion(text: str) -> dict[str, JsonValue] | None:
    explicit = bool(_CONVERT_WORD.search(text))
    for match in _CONVERSION.finditer(text):
        source, target = match.group("from"), match.group("to")
        if explicit or {source.lower(), target.lower()} <= _KNOWN_UNITS:
            number = match.group("value")
            value: JsonValue = float(number) if "." in number else int(number)
            return {"value": value, "from_unit": source, "to_unit": target}
    return None


def _fit_units(tool: ToolSpec, call: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """Write each unit as the allowed value it names, when the schema lists them."""
    fitted = dict(call)
    for field in ("from_unit", "to_unit"):
        allowed = _allowed(tool, field)
        unit = str(call[field])
        if not allowed or unit in allowed:
            continue
        wanted = {unit.lower(), _UNIT_SYMBOLS.get(unit.lower(), unit).lower()}
        fitted[field] = next((a for a in allowed if a.lower() in wanted), unit)
    return fitted


def _allowed(tool: ToolSpec, field: str) -> list[str]:
    schema = _properties(tool).get(field)
    if isinstance(schema, dict) and isinstance(ref := schema.get("$ref"), str):
        name = ref.rsplit("/", 1)[-1]
        defs = tool.parameters.get("$defs")
        schema = defs.get(name) if isinstance(defs, dict) else None
    enum = schema.get("enum") if isinstance(schema, dict) else None
    return [str(v) for v in enum] if isinstance(enum, list) else []


def _properties(tool: ToolSpec) -> dict[str, JsonValue]:
    properties = tool.parameters.get("properties")
    return properties if isinstance(properties, dict) else {}


def _has_properties(tool: ToolSpec, names: Sequence[str]) -> bool:
    return set(names) <= set(_properties(tool))


def _single_required_string(tool: ToolSpec) -> str | None:
    required = tool.parameters.get("required")
    if not isinstance(required, list) or len(required) != 1 or not isinstance(required[0], str):
        return None
    schema = _properties(tool).get(required[0])
    if isinstance(schema, dict) and schema.get("type") == "string":
        return required[0]
    return None


def _generic(text: str, tools: Sequence[ToolSpec]) -> tuple[str, dict[str, JsonValue]] | None:
    if not tools:
        return None
    wanted = set(tokenize(text))
    scores = [len(wanted & set(tokenize(f"{t.name} {t.description}"))) for t in tools]
    best = max(range(len(tools)), key=lambda i: (scores[i], -i))
    parameter = _single_required_string(tools[best])
    if scores[best] < _GENERIC_MIN_OVERLAP or parameter is None:
        return None
    return tools[best].name, {parameter: text}


def _render(content: str) -> str:
    try:
        value = json.loads(content)
    except ValueError:
        rendered = " ".join(content.split())
    else:
        rendered = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rendered = " ".join(rendered.split())
    if len(rendered) > _RESULT_CHARS:
        rendered = rendered[: _RESULT_CHARS - 1] + "…"
    return rendered
