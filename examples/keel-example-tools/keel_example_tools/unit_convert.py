"""`unit_convert`: convert a value between units of length, mass or temperature."""

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field

from tools.registry import ToolError, tool

__all__ = ["UnitConvertArgs", "UnitConvertResult", "unit_convert"]

# Length and mass: the size of one unit in the quantity's base unit (metre, kilogram).
_FACTORS: dict[str, dict[str, float]] = {
    "length": {
        "mm": 0.001,
        "cm": 0.01,
        "m": 1.0,
        "km": 1000.0,
        "in": 0.0254,
        "ft": 0.3048,
        "yd": 0.9144,
        "mi": 1609.344,
    },
    "mass": {
        "mg": 1e-6,
        "g": 0.001,
        "kg": 1.0,
        "t": 1000.0,
        "oz": 0.028349523125,
        "lb": 0.45359237,
    },
}
# Temperature scales are offset, not only scaled: (to kelvin, from kelvin).
_TEMPERATURE = {
    "C": (lambda c: c + 273.15, lambda k: k - 273.15),
    "F": (lambda f: (f - 32) * 5 / 9 + 273.15, lambda k: (k - 273.15) * 9 / 5 + 32),
    "K": (lambda k: k, lambda k: k),
}
Unit = Literal[
    "mm", "cm", "m", "km", "in", "ft", "yd", "mi", "mg", "g", "kg", "t", "oz", "lb", "C", "F", "K"
]
"""Every unit the tool knows."""


class UnitConvertArgs(BaseModel):
    """A value and the units to convert it from and to."""

    value: float = Field(allow_inf_nan=False)
    from_unit: Unit
    to_unit: Unit


class UnitConvertResult(BaseModel):
    """The converted value."""

    value: float
    unit: Unit
    quantity: Literal["length", "mass", "temperature"]


@tool(idempotent=True, timeout=timedelta(seconds=5))
def unit_convert(args: UnitConvertArgs) -> UnitConvertResult:
    """Convert a length, mass or temperature from one unit to another.

    Units: length mm cm m km in ft yd mi; mass mg g kg t oz lb; temperature C F K.
    Both units must measure the same quantity. The value is rounded to 10 significant
    digits.
    """
    if args.from_unit in _TEMPERATURE and args.to_unit in _TEMPERATURE:
        to_kelvin = _TEMPERATURE[args.from_unit][0]
        from_kelvin = _TEMPERATURE[args.to_unit][1]
        return _result(from_kelvin(to_kelvin(args.value)), args.to_unit, "temperature")
    for quantity, factors in _FACTORS.items():
        if args.from_unit in factors and args.to_unit in factors:
            value = args.value * factors[args.from_unit] / factors[args.to_unit]
            return _result(value, args.to_unit, quantity)
    raise ToolError(f"cannot convert {args.from_unit} to {args.to_unit}: different quantities")


def _result(value: float, unit: Unit, quantity: str) -> UnitConvertResult:
    # 10 significant digits hide binary noise (1 in -> 2.5400000000000003 cm).
    rounded = float(f"{value:.10g}")
    return UnitConvertResult.model_validate({"value": rounded, "unit": unit, "quantity": quantity})
