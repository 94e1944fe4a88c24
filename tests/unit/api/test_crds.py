"""The committed CRDs are what the models render, and they are well-formed for kubectl."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from execguard.operator.api.crds import CATEGORY, KINDS, Kind, render_crd, render_yaml

CRD_DIR = Path(__file__).resolve().parents[3] / "crds"


def _walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.kind)
def test_committed_crd_is_what_the_models_render(kind: Kind) -> None:
    committed = (CRD_DIR / kind.file_name).read_text(encoding="utf-8")
    assert committed == render_yaml(kind), (
        f"crds/{kind.file_name} is stale: run python -m execguard.operator.api.crds crds/"
    )


def test_crd_directory_holds_one_file_per_kind_and_nothing_else() -> None:
    assert sorted(path.name for path in CRD_DIR.glob("*.yaml")) == sorted(
        kind.file_name for kind in KINDS
    )


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.kind)
def test_every_spec_and_status_field_has_a_description_for_kubectl_explain(kind: Kind) -> None:
    schema = render_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for part in ("spec", "status"):
        for path, node in _walk(schema["properties"][part], part):
            if path == part or path.endswith(("[]", "{}")):
                continue
            assert node.get("description"), f"{kind.kind} {path} has no description"


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.kind)
def test_every_schema_node_is_typed_as_a_structural_schema_requires(kind: Kind) -> None:
    schema = render_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema, kind.kind):
        assert (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ), f"{path} has no type"
        assert "$ref" not in node, path
        assert "anyOf" not in node, path


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.kind)
def test_kind_is_in_the_execguard_category_with_a_short_name(kind: Kind) -> None:
    names = render_crd(kind)["spec"]["names"]
    assert names["categories"] == [CATEGORY]
    assert names["shortNames"]


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.kind)
def test_kind_has_a_status_subresource_and_ready_and_age_columns(kind: Kind) -> None:
    version = render_crd(kind)["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    assert "Ready" in columns
    assert columns[-1] == "Age"


def test_policy_columns_show_enforcement_ready_matched_violations_and_age() -> None:
    for kind in KINDS[:2]:
        version = render_crd(kind)["spec"]["versions"][0]
        columns = [column["name"] for column in version["additionalPrinterColumns"]]
        assert columns == ["Enforcement", "Ready", "Matched", "Violations", "Age"]


def test_crd_files_parse_as_single_yaml_documents() -> None:
    for kind in KINDS:
        documents = list(yaml.safe_load_all((CRD_DIR / kind.file_name).read_text()))
        assert len(documents) == 1
        assert documents[0]["metadata"]["name"] == kind.crd_name
