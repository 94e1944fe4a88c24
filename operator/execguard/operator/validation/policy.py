"""All deep checks on a policy spec, in one call."""

from __future__ import annotations

from execguard.operator.api.policy import PolicySpecFields
from execguard.operator.validation.json_schema import check_json_schemas
from execguard.operator.validation.problems import Problem
from execguard.operator.validation.regex import check_regexes
from execguard.operator.validation.rego import RegoCompiler, check_rego


async def validate_policy(spec: PolicySpecFields, compilers: list[RegoCompiler]) -> list[Problem]:
    """Every problem the schema could not catch; empty when the spec is valid."""
    return [
        *check_regexes(spec),
        *check_json_schemas(spec),
        *await check_rego(spec, compilers),
    ]
