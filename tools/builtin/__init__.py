"""Keel's built-in tools; they share one `tools.builtin.resources.Resources` per worker."""

from tools.builtin.calculator import calculator
from tools.builtin.create_ticket import create_ticket
from tools.builtin.http_get import http_get
from tools.builtin.search_knowledge import search_knowledge
from tools.registry import ToolDefinition

__all__ = ["BUILTIN_TOOLS"]

BUILTIN_TOOLS: tuple[ToolDefinition, ...] = (search_knowledge, calculator, http_get, create_ticket)
"""Every built-in tool, for `ToolRegistry(BUILTIN_TOOLS)`."""
