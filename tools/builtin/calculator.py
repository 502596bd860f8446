"""`calculator`: arithmetic the model should not do in its head, by a parser, never `eval`.

The expression is parsed with `ast.parse(..., mode="eval")` and walked by a small
interpreter that knows numbers, `+ - * / // % **`, unary signs, parentheses, the
constants `pi` and `e`, and the functions `sqrt abs round min max`; any other node (a
name, an attribute, a call of anything else, a string, a comparison) is refused by type.
Inputs are bounded so no call can hang a worker: the text is at most 200 characters, an
integer at most `_MAX_BITS` bits (checked before a power is computed, so `9**9**9` is
refused at once rather than computed), and floats must stay finite.
"""

import ast
import math
import operator
from collections.abc import Callable
from datetime import timedelta

from pydantic import BaseModel, Field

from tools.registry import ToolError, tool

__all__ = ["CalculatorArgs", "CalculatorResult", "calculator"]

_MAX_LENGTH = 200
_MAX_BITS = 1024  # integers up to about 1e308, the float range

_Number = int | float

_BINARY: dict[type[ast.operator], tuple[str, Callable[[_Number, _Number], _Number]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
    ast.Pow: ("**", operator.pow),
}
_UNARY: dict[type[ast.unaryop], Callable[[_Number], _Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_REFUSED_OPERATORS = {
    ast.BitXor: "^ (write ** for a power)",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
}


def _round(value: _Number, digits: _Number | None = None) -> _Number:
    # round(5, -10**300) would compute 10**(10**300): bound the digits like the values.
    if digits is not None and (not isinstance(digits, int) or abs(digits) > 308):
        raise ToolError("round()'s digits must be a whole number between -308 and 308")
    return round(value, digits)


# name: (function, fewest arguments, most arguments)
_FUNCTIONS: dict[str, tuple[Callable[..., _Number], int, int]] = {
    "sqrt": (math.sqrt, 1, 1),
    # pyright cannot match typeshed's generic, overloaded abs, min and max to this Callable.
    "abs": (abs, 1, 1),  # pyright: ignore[reportAssignmentType]
    "round": (_round, 1, 2),
    "min": (min, 2, 20),
    "max": (max, 2, 20),
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
_GRAMMAR = (
    "use numbers, + - * / // % **, parentheses, pi, e, and the functions sqrt, abs, round, min, max"
)


class CalculatorArgs(BaseModel):
    """One arithmetic expression."""

    expression: str = Field(
        min_length=1,
        max_length=_MAX_LENGTH,
        description="For example `(12.5 + 7) * 3 / 4` or `sqrt(2) ** 2` or `round(10 / 3, 2)`.",
    )


class CalculatorResult(BaseModel):
    """The expression and its value."""

    expression: str
    value: int | float


@tool(idempotent=True, timeout=timedelta(seconds=5))
def calculator(args: CalculatorArgs) -> CalculatorResult:
    """Evaluate an arithmetic expression exactly as written and return its value.

    Supports numbers, + - * / // % ** (power), unary minus, parentheses, the constants
    pi and e, and sqrt(x), abs(x), round(x[, digits]), min(a, b, ...), max(a, b, ...).
    `/` always gives a decimal; `//` is floor division. No variables, units or other
    functions: compute those parts yourself, then pass plain numbers.
    """
    try:
        tree = ast.parse(args.expression.strip(), mode="eval")
    except (SyntaxError, ValueError) as err:
        raise ToolError(f"not a valid expression ({_reason(err)}); {_GRAMMAR}") from err
    try:
        value = _evaluate(tree.body)
    except ZeroDivisionError as err:
        raise ToolError("division by zero") from err
    except OverflowError as err:
        raise ToolError("the result is too large") from err
    except (ValueError, TypeError) as err:  # sqrt(-1), round(1, 0.5)
        raise ToolError(f"cannot compute it: {err}") from err
    return CalculatorResult(expression=args.expression, value=value)


def _evaluate(node: ast.expr) -> _Number:
    if isinstance(node, ast.Constant):
        # bool is an int subclass; True + 1 is not arithmetic the model meant.
        if isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return _checked(node.value)
        raise ToolError(f"{node.value!r} is not a number; {_GRAMMAR}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        symbol, apply = _BINARY[type(node.op)]
        left, right = _evaluate(node.left), _evaluate(node.right)
        if symbol == "**":
            _check_power(left, right)
        return _checked(apply(left, right))
    if isinstance(node, ast.BinOp) and type(node.op) in _REFUSED_OPERATORS:
        raise ToolError(f"operator {_REFUSED_OPERATORS[type(node.op)]} is not allowed; {_GRAMMAR}")
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.Name):
        raise ToolError(f"unknown name {node.id!r}: variables are not allowed; {_GRAMMAR}")
    if isinstance(node, ast.Attribute):
        raise ToolError(f"attribute access (.{node.attr}) is not allowed; {_GRAMMAR}")
    raise ToolError(f"{type(node).__name__} expressions are not allowed; {_GRAMMAR}")


def _call(node: ast.Call) -> _Number:
    name = node.func.id if isinstance(node.func, ast.Name) else None
    if name not in _FUNCTIONS:
        shown = name or type(node.func).__name__
        raise ToolError(f"function {shown!r} is not allowed; {_GRAMMAR}")
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise ToolError(f"{name}() takes plain positional arguments only")
    function, fewest, most = _FUNCTIONS[name]
    if not fewest <= len(node.args) <= most:
        expected = str(fewest) if fewest == most else f"{fewest} to {most}"
        raise ToolError(f"{name}() takes {expected} arguments, not {len(node.args)}")
    return _checked(function(*(_evaluate(a) for a in node.args)))


def _check_power(base: _Number, exponent: _Number) -> None:
    # Only int ** int grows without bound (float powers overflow with OverflowError), so
    # estimate its size from the operands' bits before paying for the multiplication.
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if (abs(base).bit_length() - 1) * exponent > _MAX_BITS:
            raise ToolError("the power is too large (results are limited to about 1e308)")


def _checked(value: _Number | complex) -> _Number:
    if isinstance(value, complex):  # (-8) ** 0.5
        raise ToolError("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("the result is too large (or not a number)")
    if isinstance(value, int) and value.bit_length() > _MAX_BITS:
        raise ToolError("the result is too large (results are limited to about 1e308)")
    return value


def _reason(err: SyntaxError | ValueError) -> str:
    if isinstance(err, SyntaxError) and err.msg:
        return err.msg
    return str(err)
