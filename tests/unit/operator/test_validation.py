"""Checks beyond the schema: Rego compiles, JSON Schemas are schemas, regexes compile."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from execguard.operator.api.policy import ExecutionPolicySpec
from execguard.operator.validation.policy import validate_policy
from execguard.operator.validation.problems import ProblemReason
from execguard.operator.validation.rego import EmbeddedCompiler, OpaCheckCompiler

GOOD_REGO = """package execguard.request

import rego.v1

deny contains "no" if {
  input.request.body.model == "forbidden"
}
"""
SYNTAX_ERROR = "package execguard.request\n\ndeny contains msg if {\n  input.x == \n}\n"
UNDEFINED = (
    "package execguard.request\n\nimport rego.v1\n\n"
    'deny contains "x" if {\n  undefined_function(input.x)\n}\n'
)


def spec(**validation: Any) -> ExecutionPolicySpec:
    return ExecutionPolicySpec.model_validate(
        {"selector": {"matchLabels": {"a": "b"}}, "validation": validation}
    )


def module(name: str, rego: str) -> dict[str, Any]:
    return {"policies": [{"name": name, "rego": rego}]}


async def test_a_valid_policy_has_no_problems() -> None:
    valid = spec(
        request=module("good", GOOD_REGO),
        response={"jsonSchema": {"type": "object"}, "redaction": [{"name": "e", "pattern": "@"}]},
    )
    assert await validate_policy(valid, [EmbeddedCompiler()]) == []


async def test_a_rego_syntax_error_names_the_module_and_the_line() -> None:
    problems = await validate_policy(
        spec(request=module("broken", SYNTAX_ERROR)), [EmbeddedCompiler()]
    )
    assert len(problems) == 1
    assert problems[0].reason is ProblemReason.REGO_COMPILE_ERROR
    assert problems[0].field == "spec.validation.request.policies[broken].rego"
    assert problems[0].message.startswith("module 'broken' line 5:")


async def test_a_json_schema_that_is_not_a_valid_schema_is_reported_where() -> None:
    problems = await validate_policy(
        spec(response={"jsonSchema": {"type": "objekt"}}), [EmbeddedCompiler()]
    )
    assert [problem.reason for problem in problems] == [ProblemReason.INVALID_JSON_SCHEMA]
    assert "at /type" in problems[0].message


async def test_a_redaction_pattern_that_does_not_compile_is_reported() -> None:
    problems = await validate_policy(
        spec(response={"redaction": [{"name": "r", "pattern": "(unclosed"}]}), [EmbeddedCompiler()]
    )
    assert problems[0].field == "spec.validation.response.redaction[r].pattern"
    assert "missing )" in problems[0].message


def _opa() -> Path | None:
    from execguard.devkit.binaries import BinaryNotBuilt, find_binary

    try:
        return find_binary("opa")
    except BinaryNotBuilt:
        found = shutil.which("opa")
        return Path(found) if found else None


@pytest.mark.opa
async def test_opa_check_reports_an_undefined_reference_with_module_and_line() -> None:
    opa = _opa()
    if opa is None:
        pytest.skip("opa is not built")
    problems = await validate_policy(
        spec(request=module("undefined", UNDEFINED)), [EmbeddedCompiler(), OpaCheckCompiler(opa)]
    )
    assert problems[0].field == "spec.validation.request.policies[undefined].rego"
    assert problems[0].message == "module 'undefined' line 6: undefined function undefined_function"


@pytest.mark.opa
async def test_opa_check_sees_the_library_so_a_missing_library_function_is_refused() -> None:
    opa = _opa()
    if opa is None:
        pytest.skip("opa is not built")
    calls_missing = (
        "package execguard.request\n\nimport rego.v1\nimport data.execguard.lib.pii\n\n"
        'deny contains "x" if {\n  pii.phone_numbers(input.x)\n}\n'
    )
    problems = await validate_policy(
        spec(request=module("pii", calls_missing)), [EmbeddedCompiler(), OpaCheckCompiler(opa)]
    )
    assert [problem.field for problem in problems] == ["spec.validation.request.policies[pii].rego"]
    assert problems[0].message.startswith("module 'pii' line 7: ")
    assert "pii.phone_numbers" in problems[0].message


@pytest.mark.opa
async def test_opa_check_refuses_a_phase_document_that_is_not_a_package() -> None:
    # The embedded engine would find no decision rules there and allow everything.
    opa = _opa()
    if opa is None:
        pytest.skip("opa is not built")
    not_a_package = "package execguard\n\nimport rego.v1\n\nrequest := 5\n"
    problems = await validate_policy(
        spec(request=module("odd", not_a_package)), [EmbeddedCompiler(), OpaCheckCompiler(opa)]
    )
    assert problems
    assert problems[0].field == "spec.validation"
    assert "undefined ref: data.execguard.request.deny" in problems[0].message
