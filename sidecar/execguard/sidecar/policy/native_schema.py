"""`data.execguard.lib.schema.violations` in Python, for the embedded engine.

The same JSON Schema subset, messages and traversal as `rego/lib/schema.rego`
(read it for the keywords and the two-level limit), registered as a regorus
extension by the worker and called from `rego/native/schema.rego`. Only the
`pattern` keyword stays in Rego: a pattern is a Rego regular expression, so
this module hands back what to match (path, string, pattern) and the Rego
side matches it with the engine's own `regex.match`.

Where the Rego library would fail (a schema that is not an object, a type
list that is not strings), or where a message would need OPA's formatting
of an array or object, this raises: the worker then asks the rego-cpp
fallback, which runs the Rego library itself. A limit that is not a number
compares as Rego compares values of different types.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Final

Json = object


class SchemaShapeError(TypeError):
    """The schema is not one the Rego library can read without failing."""


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


def _number(value: Json) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def rego_equal(left: Json, right: Json) -> bool:
    """Rego's `==` on JSON values: numbers by value, but `true` is not `1`."""
    if _number(left) and _number(right):
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


def _type_ok(value: Json, name: Json) -> bool:
    if name == "integer":
        return _number(value) and isinstance(value, int | float) and math.floor(value) == value
    return type_name(value) == name


# Rego orders values of different types: null < boolean < number < string < array < object.
_TYPE_ORDER: Final = {"null": 0, "boolean": 1, "number": 2, "string": 3, "array": 4, "object": 5}


def _compare(number: int | float, limit: Json) -> int:
    """The sign of `number - limit` under Rego's ordering, which compares across types."""
    if _number(limit):
        assert isinstance(limit, int | float)
        return (number > limit) - (number < limit)
    return (_TYPE_ORDER["number"] > _TYPE_ORDER[type_name(limit)]) * 2 - 1


def _text(limit: Json) -> str:
    """`sprintf("%v", [limit])` as OPA writes it."""
    if _number(limit):
        assert isinstance(limit, int | float)
        return format_number(limit)
    if limit is None or isinstance(limit, bool):
        return "null" if limit is None else str(limit).lower()
    if isinstance(limit, str):
        return limit
    # Arrays and objects in a limit: leave such schemas to the Rego library.
    raise SchemaShapeError("a limit is an array or an object")


def _object(schema: Json, what: str) -> dict[str, Json]:
    if not isinstance(schema, dict):
        raise SchemaShapeError(f"{what} is not an object")
    return schema


def _level(path: str, value: Json, schema: dict[str, Json]) -> set[str]:
    found: set[str] = set()
    keys = schema.keys()
    if "type" in keys:
        expected = schema["type"]
        if isinstance(expected, str) and not _type_ok(value, expected):
            found.add(f"{path}: expected {expected}, got {type_name(value)}")
        if isinstance(expected, list) and not any(_type_ok(value, t) for t in expected):
            if not all(isinstance(t, str) for t in expected):
                raise SchemaShapeError("type lists a name that is not a string")
            found.add(f"{path}: expected one of {'|'.join(expected)}, got {type_name(value)}")
    enum = schema.get("enum")
    if isinstance(enum, list) and not any(rego_equal(value, item) for item in enum):
        found.add(f"{path}: value is not one of the allowed values")
    if "const" in keys and not rego_equal(value, schema["const"]):
        found.add(f"{path}: value is not the required constant")
    if isinstance(value, str):
        if "maxLength" in keys and _compare(len(value), schema["maxLength"]) > 0:
            found.add(f"{path}: longer than {_text(schema['maxLength'])} characters")
        if "minLength" in keys and _compare(len(value), schema["minLength"]) < 0:
            found.add(f"{path}: shorter than {_text(schema['minLength'])} characters")
    if _number(value):
        assert isinstance(value, int | float)
        if "minimum" in keys and _compare(value, schema["minimum"]) < 0:
            found.add(f"{path}: below the minimum {_text(schema['minimum'])}")
        if "maximum" in keys and _compare(value, schema["maximum"]) > 0:
            found.add(f"{path}: above the maximum {_text(schema['maximum'])}")
    if isinstance(value, dict):
        required = schema.get("required")
        if isinstance(required, list):
            missing = {name for name in map(_hashable, required) if name not in value}
            names = sorted(name for name in missing if isinstance(name, str))
            if len(names) != len(missing):
                raise SchemaShapeError("required lists a name that is not a string")
            if names:
                found.add(f"{path}: missing required properties: {', '.join(names)}")
        if "additionalProperties" in keys and schema["additionalProperties"] is False:
            declared = _object(schema.get("properties", {}), "properties")
            extra = value.keys() - declared.keys()
            if extra:
                found.add(f"{path}: properties not allowed: {', '.join(sorted(extra))}")
    if isinstance(value, list):
        if "maxItems" in keys and _compare(len(value), schema["maxItems"]) > 0:
            found.add(f"{path}: more than {_text(schema['maxItems'])} items")
        if "minItems" in keys and _compare(len(value), schema["minItems"]) < 0:
            found.add(f"{path}: fewer than {_text(schema['minItems'])} items")
    return found


def _hashable(value: Json) -> Json:
    if isinstance(value, list | dict):
        raise SchemaShapeError("required lists a name that is not a string")
    return value


def _levels(value: Json, schema: Json) -> list[tuple[str, Json, dict[str, Json]]]:
    """(path, value, schema) of every level checked: the value, its properties or items."""
    root = _object(schema, "the schema")
    levels: list[tuple[str, Json, dict[str, Json]]] = [("$", value, root)]
    if isinstance(value, dict):
        properties = _object(root.get("properties", {}), "properties")
        for name, subschema in properties.items():
            if name in value:
                levels.append((f"$.{name}", value[name], _object(subschema, f"properties.{name}")))
    items = root.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        levels.extend((f"$[{index}]", item, items) for index, item in enumerate(value))
    return levels


def violations(value: Json, schema: Json) -> set[str]:
    """Every message of the Rego library's `violations` except those of `pattern`."""
    found: set[str] = set()
    for path, level_value, level_schema in _levels(value, schema):
        found |= _level(path, level_value, level_schema)
    return found


def pattern_checks(value: Json, schema: Json) -> list[list[str]]:
    """[path, string, pattern] for every `pattern` keyword that applies to a string."""
    checks: list[list[str]] = []
    for path, level_value, level_schema in _levels(value, schema):
        pattern = level_schema.get("pattern")
        if isinstance(level_value, str) and isinstance(pattern, str):
            checks.append([path, level_value, pattern])
    return checks


# Rego name -> (number of arguments, implementation), as regorus registers extensions.
EXTENSIONS: Final[dict[str, tuple[int, Callable[..., object]]]] = {
    "execguard.native.schema_violations": (2, violations),
    "execguard.native.schema_pattern_checks": (2, pattern_checks),
}
