"""What an edit may replace: the answer of an answer review, the arguments of a tool call.

Edited arguments must fit the tool's JSON schema; an edited answer cites only passages the
review shows. The API checks an edit to answer with a
clear 422, and the workflow's `decide` validator checks it again, so an edit that would
break the tool never reaches the run's history, whoever sends it.
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

from jsonschema import Draft202012Validator
from pydantic import JsonValue

from keel.schemas.reviews import ReviewDecision

__all__ = ["EditProblem", "edit_problem"]


@dataclass(frozen=True)
class EditProblem:
    """Why an edit is refused, with the fields at fault."""

    kind: Literal["wrong_replacement", "invalid_arguments", "unknown_citation"]
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list[dict[str, str]])


def edit_problem(
    tool_parameters: dict[str, JsonValue] | None,
    is_tool_call: bool,
    decision: ReviewDecision,
    evidence: Collection[str] = (),
) -> EditProblem | None:
    """The problem with `decision` as an edit of the pending action, or None.

    `evidence` holds the ids of the passages the review shows, which an edited answer may cite.
    """
    if decision.action != "edit":
        return None
    if not is_tool_call:
        if decision.arguments is not None:
            return _wrong("this review is about an answer: edit it with 'answer'", "answer")
        errors = [
            {"field": f"citations.{n}", "message": f"{c!r} is not a passage of this review"}
            for n, c in enumerate(decision.citations or [])
            if c not in evidence
        ]
        if errors:
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
            return EditProblem("unknown_citation", detail, errors)
        return None
    if decision.arguments is None:
        return _wrong("this review is about a tool call: edit it with 'arguments'", "arguments")
    validator = Draft202012Validator(tool_parameters or {})
    errors = [
        {
            "field": ".".join(["arguments", *(str(p) for p in e.absolute_path)]),
            "message": e.message,
        }
        # typeshed's jsonschema stubs leave a parameter of a deprecated overload untyped.
        for e in validator.iter_errors(decision.arguments)  # pyright: ignore[reportUnknownMemberType]
    ]
    if not errors:
        return None
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return EditProblem("invalid_arguments", detail, errors)


def _wrong(detail: str, field_name: str) -> EditProblem:
    return EditProblem("wrong_replacement", detail, [{"field": field_name, "message": detail}])
