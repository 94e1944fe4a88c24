"""Renders the CustomResourceDefinitions in `crds/` from the API models.

Run `python -m execguard.operator.api.crds crds/` after changing a model; a unit
test fails while the committed files differ from what this module renders.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel

from execguard.operator.api.base import GROUP, VERSION
from execguard.operator.api.baseline import DriftBaselineSpec, DriftBaselineStatus
from execguard.operator.api.policy import (
    ClusterExecutionPolicySpec,
    ExecutionPolicySpec,
    PolicyStatus,
)
from execguard.operator.api.structural import structural_schema

CATEGORY: Final = "execguard"
HEADER: Final = (
    "# Generated from the pydantic models in operator/execguard/operator/api/ by\n"
    "#   python -m execguard.operator.api.crds crds/\n"
    "# Do not edit by hand: change the models and regenerate.\n"
)


@dataclass(frozen=True)
class PrinterColumn:
    """One `kubectl get` column."""

    name: str
    type: Literal["string", "integer", "date", "number", "boolean"]
    json_path: str
    description: str
    priority: int = 0


@dataclass(frozen=True)
class Kind:
    """Everything that describes one custom resource kind."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    scope: Literal["Namespaced", "Cluster"]
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[PrinterColumn, ...]

    @property
    def crd_name(self) -> str:
        """`<plural>.<group>`, the CRD object's name."""
        return f"{self.plural}.{GROUP}"

    @property
    def file_name(self) -> str:
        """The file in `crds/` holding this kind's CRD."""
        return f"{self.crd_name}.yaml"


_READY = PrinterColumn(
    "Ready",
    "string",
    '.status.conditions[?(@.type=="Ready")].status',
    "Whether the latest generation is valid and in effect.",
)
_AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation.")
_POLICY_COLUMNS = (
    PrinterColumn("Enforcement", "string", ".spec.enforcementAction", "enforce, warn or dryrun."),
    _READY,
    PrinterColumn("Matched", "integer", ".status.matchedPods", "Opted-in pods selected."),
    PrinterColumn("Violations", "integer", ".status.violations", "Denials in the last window."),
    _AGE,
)

EXECUTION_POLICY: Final = Kind(
    kind="ExecutionPolicy",
    plural="executionpolicies",
    singular="executionpolicy",
    short_names=("xp",),
    scope="Namespaced",
    description="Boundaries, validation and thresholds enforced by the execguard sidecar on "
    "the selected inference pods of one namespace.",
    spec=ExecutionPolicySpec,
    status=PolicyStatus,
    columns=_POLICY_COLUMNS,
)
CLUSTER_EXECUTION_POLICY: Final = Kind(
    kind="ClusterExecutionPolicy",
    plural="clusterexecutionpolicies",
    singular="clusterexecutionpolicy",
    short_names=("cxp",),
    scope="Cluster",
    description="An execution policy for selected pods across selected namespaces. "
    "Namespaced ExecutionPolicies can tighten it but never loosen it.",
    spec=ClusterExecutionPolicySpec,
    status=PolicyStatus,
    columns=_POLICY_COLUMNS,
)
DRIFT_BASELINE: Final = Kind(
    kind="DriftBaseline",
    plural="driftbaselines",
    singular="driftbaseline",
    short_names=("xdb",),
    scope="Namespaced",
    description="A reference distribution of a workload's responses and the drift "
    "statistics, thresholds and action applied to its live traffic.",
    spec=DriftBaselineSpec,
    status=DriftBaselineStatus,
    columns=(
        PrinterColumn("Target", "string", ".spec.targetRef.name", "The measured workload."),
        PrinterColumn("Phase", "string", ".status.phase", "Capturing, Active or Drifted."),
        _READY,
        PrinterColumn("Action", "string", ".spec.action", "alert, quarantine or rollback."),
        PrinterColumn("DryRun", "boolean", ".spec.dryRun", "Actions only recorded.", 1),
        _AGE,
    ),
)
KINDS: Final = (EXECUTION_POLICY, CLUSTER_EXECUTION_POLICY, DRIFT_BASELINE)


def render_crd(kind: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition object for `kind`."""
    spec_schema = structural_schema(kind.spec)
    status_schema = structural_schema(kind.status)
    columns = []
    for column in kind.columns:
        entry: dict[str, Any] = {
            "name": column.name,
            "type": column.type,
            "jsonPath": column.json_path,
            "description": column.description,
        }
        if column.priority:
            entry["priority"] = column.priority
        columns.append(entry)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/name": "execguard"},
        },
        "spec": {
            "group": GROUP,
            "scope": kind.scope,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": kind.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {
                                    "type": "string",
                                    "description": "The versioned schema of this object.",
                                },
                                "kind": {
                                    "type": "string",
                                    "description": "The REST resource this object represents.",
                                },
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def render_yaml(kind: Kind) -> str:
    """The file content for `kind`'s CRD."""
    body = yaml.safe_dump(render_crd(kind), sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body


def write_all(directory: Path) -> list[Path]:
    """Write every CRD into `directory`; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = directory / kind.file_name
        path.write_text(render_yaml(kind), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    """Entry point: `python -m execguard.operator.api.crds <directory>`."""
    if len(argv) != 1:
        print("usage: python -m execguard.operator.api.crds <directory>", file=sys.stderr)
        return 2
    for path in write_all(Path(argv[0])):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
