"""Tools: the catalog the model and the API see, and one call's input and outcome."""

from pydantic import BaseModel, Field, JsonValue

__all__ = ["TOOL_CATALOG", "ToolCallInput", "ToolCatalog", "ToolInfo", "ToolList", "ToolOutcome"]

TOOL_CATALOG = "tools.catalog"
"""(Local) activity type that returns the worker's `ToolCatalog`."""


class ToolInfo(BaseModel):
    """One registered tool, as the model, the API and the workflow see it."""

    name: str
    description: str
    parameters: dict[str, JsonValue] = Field(description="JSON schema of the arguments.")
    result_schema: dict[str, JsonValue]
    requires_approval: bool = False
    idempotent: bool = False
    timeout_s: float = Field(gt=0)
    max_attempts: int = Field(ge=0, description="Temporal attempts; 0 means unlimited.")
    retry_initial_interval_s: float = Field(default=1.0, gt=0)
    retry_backoff: float = Field(default=2.0, ge=1.0)
    source: str = Field(description="The package that registered it.")

    @property
    def activity(self) -> str:
        """The tool's activity type."""
        return f"tool.{self.name}"


class ToolCatalog(BaseModel):
    """Every tool a worker runs."""

    tools: list[ToolInfo]

    def get(self, name: str) -> ToolInfo | None:
        """The tool called `name`, if any."""
        return next((t for t in self.tools if t.name == name), None)


class ToolCallInput(BaseModel):
    """Activity input: one call of one tool."""

    call_id: str
    arguments: dict[str, JsonValue] = Field(default_factory=dict)
    idempotency_key: str = Field(description="Workflow id + step + call: the side effect's key.")


class ToolOutcome(BaseModel):
    """What a call returned, or what the model must fix (bad arguments, a `ToolError`)."""

    call_id: str
    ok: bool
    result: JsonValue = None
    error: str | None = None


class ToolList(BaseModel):
    """`GET /v1/tools`: the catalog the workers published."""

    tools: list[ToolInfo]
