"""JSON values as Rego sees them: type names, equality, ordering, `%v` text.

The native library functions (`native_schema`) must reproduce what the Rego
library computes on OPA, and the decision parser names the type of a value
a policy returned; both use these.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

Json = object


class NotPrintable(TypeError):
    """A value whose `sprintf("%v", ...)` text is not reproduced here (arrays, objects)."""


def type_name(value: Json) -> str:
    """Rego's `type_name` of a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "set"


def is_number(value: Json) -> bool:
    """A JSON number (Python's bool is an int; Rego's boolean is not a number)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def rego_equal(left: Json, right: Json) -> bool:
    """Rego's `==` on JSON values: numbers by value, but `true` is not `1`."""
    if is_number(left) and is_number(right):
        return bool(left == right)
    if type_name(left) != type_name(right):
        return False
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(rego_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(rego_equal(left[k], right[k]) for k in left)
    return bool(left == right)


def format_number(value: int | float) -> str:
    """`sprintf("%v", [n])` as OPA writes it (Go's shortest %g for fractions)."""
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent  # digits before the decimal point
    leading = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        power = point - 1
        return f"{leading}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{leading}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{leading}{text}{'0' * (point - len(text))}"
    return f"{leading}{text[:point]}.{text[point:]}"


# Rego orders values of different types: null < boolean < number < string < array < object.
_TYPE_ORDER: Final = {"null": 0, "boolean": 1, "number": 2, "string": 3, "array": 4, "object": 5}


def compare(number: int | float, limit: Json) -> int:
    """The sign of `number - limit` under Rego's ordering, which compares across types."""
    if is_number(limit):
        assert isinstance(limit, int | float)
        return (number > limit) - (number < limit)
    return (_TYPE_ORDER["number"] > _TYPE_ORDER[type_name(limit)]) * 2 - 1


def text(limit: Json) -> str:
    """`sprintf("%v", [limit])` as OPA writes it, for scalars."""
    if is_number(limit):
        assert isinstance(limit, int | float)
        return format_number(limit)
    if limit is None or isinstance(limit, bool):
        return "null" if limit is None else str(limit).lower()
    if isinstance(limit, str):
        return limit
    raise NotPrintable(f"no %v text for {type_name(limit)} values")
