"""Building blocks shared by every kind: the model base, label selectors, conditions.

CEL rules (`x-kubernetes-validations`) are attached with `cel(...)`; the CRD
renderer copies them into the schema, and the apiserver enforces them. The same
rules are *not* re-implemented in Python: the apiserver has already applied them
to every object the operator reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP: Final = "execguard.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""RFC 1123 label: what Kubernetes accepts as an object name part."""


def cel(rule: str, message: str, *, field_path: str | None = None) -> dict[str, str]:
    """One `x-kubernetes-validations` entry: the CEL `rule` and the `message` shown on refusal."""
    entry = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """`json_schema_extra` carrying CEL rules for a model or a field."""
    return {"x-kubernetes-validations": list(rules)}


class ApiModel(BaseModel):
    """Base of every CRD model: camelCase keys as in the YAML, unknown keys refused."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
    )


FreeFormObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
"""An arbitrary JSON object stored as given (used for embedded JSON Schemas)."""

IntOrString = Annotated[
    int | str,
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]
"""A port number or a port name, as in a Service's `targetPort`."""


class SelectorOperator(StrEnum):
    """How a label selector requirement compares the label's value."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(ApiModel):
    """One `matchExpressions` entry, exactly as in Kubernetes label selectors."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0)"
                " : (!has(self.values) || size(self.values) == 0)",
                "values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",
            )
        )
    )

    key: str = Field(
        min_length=1, max_length=317, description="The label key the requirement applies to."
    )
    operator: SelectorOperator = Field(
        description="In, NotIn, Exists or DoesNotExist: how the key relates to the values."
    )
    values: list[Annotated[str, Field(max_length=63)]] | None = Field(
        default=None,
        max_length=64,
        description="Label values; non-empty for In and NotIn, empty for Exists and DoesNotExist.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )


class LabelSelector(ApiModel):
    """A Kubernetes label selector: all matchLabels and all matchExpressions must hold."""

    match_labels: dict[str, Annotated[str, Field(max_length=63)]] | None = Field(
        default=None,
        max_length=64,
        description="Labels that must be present with exactly these values.",
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None,
        max_length=32,
        description="Set-based requirements that must all hold.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )

    @property
    def is_empty(self) -> bool:
        """An empty selector matches everything."""
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with these labels is selected (Kubernetes semantics)."""
        for key, value in (self.match_labels or {}).items():
            if labels.get(key) != value:
                return False
        for requirement in self.match_expressions or []:
            present = requirement.key in labels
            values = requirement.values or []
            match requirement.operator:
                case SelectorOperator.IN:
                    if not present or labels[requirement.key] not in values:
                        return False
                case SelectorOperator.NOT_IN:
                    if present and labels[requirement.key] in values:
                        return False
                case SelectorOperator.EXISTS:
                    if not present:
                        return False
                case SelectorOperator.DOES_NOT_EXIST:
                    if present:
                        return False
        return True


NON_EMPTY_SELECTOR_RULE: Final = (
    "(has(self.matchLabels) && size(self.matchLabels) > 0)"
    " || (has(self.matchExpressions) && size(self.matchExpressions) > 0)"
)


class ConditionStatus(StrEnum):
    """Condition status values defined by the Kubernetes API conventions."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A status condition following the Kubernetes API conventions (metav1.Condition)."""

    type: str = Field(
        min_length=1,
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="The condition type in CamelCase, e.g. Ready or Invalid.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation the condition was computed from.",
    )
    last_transition_time: datetime = Field(
        description="When the condition last changed status (RFC 3339)."
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="A CamelCase, machine-readable reason for the last transition.",
    )
    message: str = Field(
        default="",
        max_length=32768,
        description="A human-readable explanation, e.g. a Rego compile error with module and line.",
    )


CONDITIONS_FIELD_EXTRA: Final[dict[str, Any]] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}
