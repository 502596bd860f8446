"""Spot text that reads like instructions to a model rather than content for a reader.

Retrieved text is data. A chunk that tries to steer the model reading it ("ignore previous
instructions", "you are now…", a fake system prompt, tool-call JSON) is flagged
`suspected_injection` at ingestion, so prompts can fence it and the escalation policy can
act on it. The patterns aim at phrasings addressed to an assistant; ordinary help text
("ignore this step if…", "the system prompts you to sign in") does not match.
"""

import re

from keel.schemas.retrieval import SUSPECTED_INJECTION

__all__ = ["injection_flags", "looks_like_injection"]

# Each pattern with the lowercase words one of which it cannot match without: a substring
# test on them skips most patterns for most chunks (a regex scan costs far more).
_PATTERNS: list[tuple[tuple[str, ...], str]] = [
    # Overriding what came before.
    (
        ("ignore", "disregard", "forget", "override", "bypass"),
        r"\b(ignore|disregard|forget|override|bypass)\b(\s+\w+){0,3}?\s+"
        r"(previous|prior|above|earlier|preceding|all|any|your|the|system|safety)\s+"
        r"(\w+\s+)?(instructions?|prompts?|rules|guidelines|directions|context|messages?)",
    ),
    (("follow",), r"\bdo\s+not\s+follow\s+(the\s+|your\s+|any\s+)?(previous|prior|above|system)\b"),
    # Re-assigning the model's role.
    (
        ("you are",),
        r"\byou\s+are\s+now\s+((an?|the|my)\s+)?(\w+\s+)?(assistant|ai|model|bot|chatbot|agent|"
        r"character|persona|dan|unrestricted|jailbroken|free\s+(of|from))\b",
    ),
    (("you are",), r"\byou\s+are\s+now\s+in\s+\w+\s+mode\b"),
    (
        ("you are",),
        r"\byou\s+are\s+no\s+longer\s+(an?\s+)?(ai|assistant|model|bound|restricted|limited)\b",
    ),
    (("now on",), r"\bfrom\s+now\s+on,?\s+(you|the\s+assistant)\b"),
    (
        ("act as", "behave as", "respond as"),
        r"\b(act|behave|respond)\s+as\s+(if\s+you\s+were\s+)?(an?\s+)?"
        r"(unrestricted|jailbroken|different|new)\b",
    ),
    (
        ("pretend",),
        r"\bpretend\s+(to\s+be|you\s+are)\s+((an?|the|my)\s+)?(\w+\s+)?"
        r"(assistant|ai|model|admin\w*|system|developer|human|unrestricted|jailbroken)\b",
    ),
    (("instruction",), r"\bnew\s+instructions?\s*:"),
    # Talking about or imitating the model's prompt.
    (
        ("prompt", "message"),
        r"\b(system|developer)\s+prompt\b"
        r"|\b(new|updated|real|actual|true|your|my)\s+(system|developer)\s+message\b",
    ),
    (
        ("prompt", "message", "instruction"),
        r"\b(reveal|print|repeat|show|output|leak)\s+(your|the)\s+(hidden\s+|secret\s+|initial\s+)?"
        r"(prompt|instructions|system\s+message)",
    ),
    (("system", "assistant", "developer"), r"^\s*(system|assistant|developer)\s*:(?!:)"),
    (("im_", "system", "endoftext"), r"<\|?\s*(im_start|im_end|system|endoftext)\s*\|?>"),
    (("inst]", "sys]", "sys>>"), r"\[/?(INST|SYS)\]|<</?SYS>>"),
    (
        ("system>", "instruction>", "instructions>", "tool_call>", "function_call>"),
        r"</?(system|instructions?|tool_call|function_call)>",
    ),
    # Tool- and function-call syntax.
    (("tool_call", "function_call", "tool_use"), r"\"(tool_calls?|function_call|tool_use)\"\s*:"),
    (
        ('"arguments"', '"parameters"', '"input"'),
        r"\{\s*\"(name|function)\"\s*:\s*\"[^\"]+\"\s*,\s*\"(arguments|parameters|input)\"\s*:",
    ),
    (('"function"', '"tool_use"'), r"\"type\"\s*:\s*\"(function|tool_use)\""),
    ((" tool",), r"\b(call|invoke|execute)\s+the\s+\w+\s+tool\s+(with|to)\b"),
]
_COMPILED = [
    (words, re.compile(pattern, re.IGNORECASE | re.MULTILINE)) for words, pattern in _PATTERNS
]


def looks_like_injection(text: str) -> bool:
    """Whether `text` contains a phrase addressed to a model as an instruction."""
    lowered = text.lower()
    return any(
        any(word in lowered for word in words) and pattern.search(text) is not None
        for words, pattern in _COMPILED
    )


def injection_flags(text: str) -> list[str]:
    """The passage flags for `text`: ``["suspected_injection"]`` or none."""
    return [SUSPECTED_INJECTION] if looks_like_injection(text) else []
