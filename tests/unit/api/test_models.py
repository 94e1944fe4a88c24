"""The pydantic models and the CRD schemas agree on the example objects."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from execguard.operator.api.crds import KINDS, render_crd
from execguard.operator.api.policy import ExecutionPolicySpec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "resources"
KIND_BY_NAME = {kind.kind: kind for kind in KINDS}


def _openapi_as_jsonschema(node: object) -> object:
    """The CRD schema with Kubernetes extensions dropped, readable by a draft-4 validator."""
    if isinstance(node, dict):
        return {
            key: _openapi_as_jsonschema(value)
            for key, value in node.items()
            if not key.startswith("x-kubernetes")
        }
    if isinstance(node, list):
        return [_openapi_as_jsonschema(item) for item in node]
    return node


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.stem)
def test_example_is_valid_for_both_the_model_and_the_crd_schema(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    kind = KIND_BY_NAME[document["kind"]]
    kind.spec.model_validate(document["spec"])
    schema = render_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec_schema = _openapi_as_jsonschema(schema["properties"]["spec"])
    jsonschema.Draft4Validator(spec_schema).validate(document["spec"])  # type: ignore[arg-type]


def test_model_refuses_unknown_fields_as_the_apiserver_does_with_strict_validation() -> None:
    with pytest.raises(ValidationError, match="bogus"):
        ExecutionPolicySpec.model_validate({"selector": {"matchLabels": {"a": "b"}}, "bogus": 1})


def test_model_refuses_a_rego_module_over_the_size_limit_like_the_crd() -> None:
    spec = {
        "selector": {"matchLabels": {"a": "b"}},
        "validation": {"request": {"policies": [{"name": "m", "rego": "#" * 65_537}]}},
    }
    with pytest.raises(ValidationError, match="rego"):
        ExecutionPolicySpec.model_validate(spec)


def test_model_fills_the_same_defaults_as_the_crd() -> None:
    spec = ExecutionPolicySpec.model_validate({"selector": {"matchLabels": {"a": "b"}}})
    schema = render_crd(KIND_BY_NAME["ExecutionPolicy"])["spec"]["versions"][0]["schema"]
    properties = schema["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert properties["enforcementAction"]["default"] == spec.enforcement_action == "enforce"
    assert properties["failurePolicy"]["default"] == spec.failure_policy == "closed"
    assert properties["engine"]["default"] == spec.engine == "embedded"
