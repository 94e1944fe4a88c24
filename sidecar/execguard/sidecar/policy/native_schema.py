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
from typing import Final

from execguard.sidecar.policy.rego_values import (
    Json,
    NotPrintable,
    compare,
    is_number,
    rego_equal,
    text,
    type_name,
)


class SchemaShapeError(TypeError):
    """The schema is not one the Rego library can read without failing."""


def _type_ok(value: Json, name: Json) -> bool:
    if name == "integer":
        return is_number(value) and isinstance(value, int | float) and math.floor(value) == value
    return type_name(value) == name


# Per value type: (keyword, the sign of measure - limit that violates it, message).
_BOUNDS: Final[dict[str, tuple[tuple[str, int, str], ...]]] = {
    "string": (
        ("maxLength", 1, "longer than {} characters"),
        ("minLength", -1, "shorter than {} characters"),
    ),
    "number": (("maximum", 1, "above the maximum {}"), ("minimum", -1, "below the minimum {}")),
    "array": (("maxItems", 1, "more than {} items"), ("minItems", -1, "fewer than {} items")),
}


def _measure(value: Json) -> int | float | None:
    """What the bounds of the value's type compare: its length, or the number itself."""
    if isinstance(value, str | list):
        return len(value)
    if is_number(value):
        assert isinstance(value, int | float)
        return value
    return None


def _limit_text(limit: Json) -> str:
    try:
        return text(limit)
    except NotPrintable as error:
        # OPA's text for an array or object limit is not reproduced: leave it to the Rego library.
        raise SchemaShapeError(str(error)) from error


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
    measure = _measure(value)
    if measure is not None:
        for keyword, sign, message in _BOUNDS[type_name(value)]:
            if keyword in keys and compare(measure, schema[keyword]) == sign:
                found.add(f"{path}: {message.format(_limit_text(schema[keyword]))}")
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
