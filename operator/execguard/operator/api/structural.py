"""Turns a pydantic model's JSON Schema into a Kubernetes structural OpenAPI v3 schema.

Kubernetes accepts a subset of OpenAPI v3.0 for CRDs: no `$ref`, no `anyOf` for
optional fields, booleans for `exclusiveMinimum`, `enum` rather than `const`, and
every node typed. This module does exactly that translation and refuses anything
it does not understand, so an unsupported construct fails the generator rather
than producing a schema the apiserver would reject or misread.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# Keys copied unchanged from the JSON Schema pydantic generates.
_PASSTHROUGH_KEYS = frozenset(
    {
        "type",
        "description",
        "default",
        "enum",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
    }
)
_DROPPED_KEYS = frozenset({"title", "$defs"})


class SchemaTranslationError(ValueError):
    """The model uses a construct the CRD schema cannot express (or lacks a description)."""


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of `model`, keys as they appear in YAML (camelCase)."""
    document = model.model_json_schema(by_alias=True, mode="validation")
    definitions: dict[str, Any] = document.get("$defs", {})
    return _translate(document, definitions, path=model.__name__)


def _translate(node: dict[str, Any], definitions: dict[str, Any], path: str) -> dict[str, Any]:
    node = _resolve(node, definitions)
    node = _unwrap_optional(node, definitions)
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            required = set(node.get("required", []))
            properties: dict[str, Any] = {}
            for name, child in value.items():
                translated = _translate(child, definitions, f"{path}.{name}")
                if "description" not in translated:
                    raise SchemaTranslationError(f"{path}.{name} has no description")
                if name not in required and translated.get("default") is None:
                    translated.pop("default", None)
                properties[name] = translated
            result["properties"] = properties
        elif key == "required":
            result["required"] = sorted(value)
        elif key == "items":
            result["items"] = _translate(value, definitions, f"{path}[]")
        elif key == "additionalProperties":
            if value is False:
                continue  # unknown fields are pruned by the apiserver already
            result["additionalProperties"] = _translate(value, definitions, f"{path}{{}}")
        elif key == "const":
            result["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            result[bound] = value
            result[key] = True
        elif key in _PASSTHROUGH_KEYS:
            result[key] = value
        else:
            raise SchemaTranslationError(f"{path}: unsupported JSON Schema keyword {key!r}")
    if "properties" in result:
        result.setdefault("type", "object")
    if (
        "type" not in result
        and not result.get("x-kubernetes-int-or-string")
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        raise SchemaTranslationError(f"{path}: no type")
    return result


def _resolve(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """Inline a `$ref`, keeping the referring node's own keys (its description wins)."""
    if "$ref" not in node:
        return node
    name = node["$ref"].rsplit("/", 1)[-1]
    merged = dict(definitions[name])
    merged.update({key: value for key, value in node.items() if key != "$ref"})
    if "x-kubernetes-validations" in definitions[name] and "x-kubernetes-validations" in node:
        merged["x-kubernetes-validations"] = (
            definitions[name]["x-kubernetes-validations"] + node["x-kubernetes-validations"]
        )
    return merged


def _unwrap_optional(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, null]` (an optional field) becomes X with the outer node's keys."""
    if "anyOf" not in node:
        return node
    variants = [variant for variant in node["anyOf"] if variant.get("type") != "null"]
    if len(variants) != 1:
        raise SchemaTranslationError(f"unsupported union: {node['anyOf']}")
    inner = _resolve(variants[0], definitions)
    merged = dict(inner)
    for key, value in node.items():
        if key == "anyOf":
            continue
        if key == "x-kubernetes-validations" and key in inner:
            merged[key] = inner[key] + value
        else:
            merged[key] = value
    return merged
