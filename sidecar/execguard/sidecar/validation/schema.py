"""JSON Schema checks for structured output (and request bodies of the json protocol)."""

from __future__ import annotations

import json

import jsonschema
from jsonschema.exceptions import SchemaError
from pydantic import JsonValue

_MAX_REPORTED = 5


class SchemaCheck:
    """A compiled JSON Schema; `problems` lists where an instance fails it."""

    def __init__(self, schema: dict[str, JsonValue]) -> None:
        validator_class = jsonschema.validators.validator_for(
            schema, jsonschema.Draft202012Validator
        )
        try:
            validator_class.check_schema(schema)
        except SchemaError as error:
            raise ValueError(f"JSON Schema is invalid: {error.message}") from error
        self._validator = validator_class(schema)

    def problems(self, instance: JsonValue) -> list[str]:
        """Up to five messages naming the failing path; empty when the instance matches."""
        found: list[str] = []
        for error in self._validator.iter_errors(instance):
            path = "/".join(str(part) for part in error.absolute_path) or "<root>"
            found.append(f"schema: {path}: {error.message}")
            if len(found) >= _MAX_REPORTED:
                break
        return found

    def text_problems(self, text: str) -> list[str]:
        """Problems of text that must parse as JSON and match (assistant message content)."""
        try:
            instance: JsonValue = json.loads(text)
        except json.JSONDecodeError as error:
            return [f"schema: content is not valid JSON: {error.msg} at char {error.pos}"]
        return self.problems(instance)
