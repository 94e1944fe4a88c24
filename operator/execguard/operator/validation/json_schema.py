"""Embedded JSON Schemas must themselves be valid schemas (checked against their meta-schema)."""

from __future__ import annotations

from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from execguard.operator.api.policy import PolicySpecFields
from execguard.operator.validation.problems import Problem, ProblemReason


def _schema_problem(field: str, schema: dict[str, Any]) -> Problem | None:
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as error:
        where = "/".join(str(part) for part in error.path)
        location = f" at /{where}" if where else ""
        return Problem(
            field=field,
            reason=ProblemReason.INVALID_JSON_SCHEMA,
            message=f"not a valid JSON Schema{location}: {error.message}",
        )
    return None


def check_json_schemas(spec: PolicySpecFields) -> list[Problem]:
    """Problems with the request and response JSON Schemas of `spec`."""
    if spec.validation is None:
        return []
    found = []
    for phase, part in (
        ("request", spec.validation.request),
        ("response", spec.validation.response),
    ):
        if part is not None and part.json_schema is not None:
            problem = _schema_problem(f"spec.validation.{phase}.jsonSchema", part.json_schema)
            if problem is not None:
                found.append(problem)
    return found
