"""DriftBaseline: what to measure on a workload's traffic, against which reference.

The operator captures (or is given) a reference distribution per feature, then
scores live windows against it with the chosen statistic.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final

from pydantic import ConfigDict, Field

from execguard.operator.api.base import (
    CONDITIONS_FIELD_EXTRA,
    DNS_LABEL_PATTERN,
    ApiModel,
    Condition,
    cel,
    validations,
)
from execguard.operator.api.policy import LastAction

NUMERIC_FEATURE_RULE: Final = (
    "self.type in ['responseLength', 'outputTokens', 'latency']"
    " || (self.type == 'jsonPath' && self.valueType == 'numeric')"
)


class TargetKind(StrEnum):
    """The workload kinds a baseline can target."""

    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"


class FeatureType(StrEnum):
    """A measurable property of each response."""

    RESPONSE_LENGTH = "responseLength"
    OUTPUT_TOKENS = "outputTokens"
    LATENCY = "latency"
    REFUSAL_RATE = "refusalRate"
    FINISH_REASON = "finishReason"
    SCHEMA_FAILURE_RATE = "schemaFailureRate"
    JSON_PATH = "jsonPath"


class ValueType(StrEnum):
    """How a jsonPath feature's values are compared."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class Statistic(StrEnum):
    """The drift statistic comparing a window with the reference."""

    PSI = "psi"
    KS = "ks"
    JENSEN_SHANNON = "jensenShannon"
    CHI_SQUARED = "chiSquared"


class DriftAction(StrEnum):
    """What the operator does when drift is confirmed."""

    ALERT = "alert"
    QUARANTINE = "quarantine"
    ROLLBACK = "rollback"


class BaselinePhase(StrEnum):
    """Where a baseline is in its life."""

    CAPTURING = "Capturing"
    ACTIVE = "Active"
    DRIFTED = "Drifted"


class TargetRef(ApiModel):
    """The workload whose pods' traffic is measured (same namespace)."""

    api_version: str = Field(
        default="apps/v1", max_length=63, description="API version of the workload."
    )
    kind: TargetKind = Field(description="Deployment or StatefulSet.")
    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Name of the workload.",
    )


class Feature(ApiModel):
    """A feature measured on every response, and how its drift is scored."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.type == 'jsonPath' ? (has(self.jsonPath) && has(self.valueType))"
                " : (!has(self.jsonPath) && !has(self.valueType))",
                "jsonPath and valueType are required for type jsonPath and only allowed there",
                field_path=".jsonPath",
            ),
            cel(
                f"self.statistic != 'ks' || ({NUMERIC_FEATURE_RULE})",
                "statistic ks needs a numeric feature",
                field_path=".statistic",
            ),
            cel(
                f"self.statistic != 'chiSquared' || !({NUMERIC_FEATURE_RULE})",
                "statistic chiSquared needs a categorical feature",
                field_path=".statistic",
            ),
            cel(
                "!(self.statistic in ['ks', 'jensenShannon']) || self.threshold <= 1.0",
                "ks and jensenShannon thresholds lie between 0 and 1",
                field_path=".threshold",
            ),
        )
    )

    name: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN, description="Feature name."
    )
    type: FeatureType = Field(
        description="responseLength, outputTokens, latency, refusalRate, finishReason, "
        "schemaFailureRate, or jsonPath (a value picked from the response body)."
    )
    json_path: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        pattern=r"^\$",
        description="For type jsonPath: a JSONPath into the response body, starting with $.",
    )
    value_type: ValueType | None = Field(
        default=None, description="For type jsonPath: numeric or categorical."
    )
    statistic: Statistic = Field(
        default=Statistic.PSI,
        description="psi, ks (numeric only), jensenShannon, or chiSquared (categorical only).",
    )
    threshold: float = Field(
        default=0.2,
        gt=0,
        le=1_000_000,
        description="Scores above this count as drift for the window.",
    )
    bins: int = Field(default=10, ge=2, le=100, description="Histogram bins for numeric features.")


class Capture(ApiModel):
    """Capture the reference from live traffic."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.requests) || has(self.durationSeconds)",
                "capture needs requests or durationSeconds",
            )
        )
    )

    requests: int | None = Field(
        default=None, ge=1, le=100_000_000, description="Stop after this many responses."
    )
    duration_seconds: int | None = Field(
        default=None, ge=10, le=2_592_000, description="Stop after this many seconds."
    )


class FeatureReference(ApiModel):
    """The reference distribution of one feature: a histogram or category counts."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.categories) != (has(self.edges) || has(self.counts))",
                "give either categories, or edges with counts",
            ),
            cel(
                "!has(self.edges)"
                " || (has(self.counts) && size(self.counts) == size(self.edges) - 1)",
                "counts must have one entry fewer than edges (one per bin)",
                field_path=".counts",
            ),
        )
    )

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="The feature this reference belongs to.",
    )
    edges: list[float] | None = Field(
        default=None,
        min_length=2,
        max_length=101,
        description="Numeric features: ascending bin edges.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    counts: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None,
        max_length=100,
        description="Numeric features: observations per bin.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    categories: dict[str, Annotated[int, Field(ge=0)]] | None = Field(
        default=None,
        max_length=256,
        description="Categorical features: observations per category.",
    )


class InlineReference(ApiModel):
    """A reference given in the object rather than captured."""

    features: list[FeatureReference] = Field(
        min_length=1,
        max_length=32,
        description="One reference per feature.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )


class Reference(ApiModel):
    """How the reference distribution is obtained: captured or inline, exactly one."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("has(self.capture) != has(self.inline)", "give exactly one of capture or inline")
        )
    )

    capture: Capture | None = Field(default=None, description="Capture from live traffic.")
    inline: InlineReference | None = Field(default=None, description="Given here.")


class DriftBaselineSpec(ApiModel):
    """What to measure on a workload's responses and what to do when it drifts."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.action != 'rollback' || self.targetRef.kind == 'Deployment'",
                "action 'rollback' needs a Deployment target",
                field_path=".action",
            ),
            cel(
                "!has(self.reference.inline) || self.reference.inline.features.all(r,"
                " self.features.exists(f, f.name == r.name))",
                "every inline reference must name a feature listed in features",
                field_path=".reference.inline.features",
            ),
        )
    )

    target_ref: TargetRef = Field(
        description="The workload measured; immutable.",
        json_schema_extra=validations(cel("self == oldSelf", "targetRef is immutable")),
    )
    features: list[Feature] = Field(
        min_length=1,
        max_length=32,
        description="Features measured and their statistics.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    reference: Reference = Field(description="How the reference distribution is obtained.")
    window_seconds: int = Field(
        default=300, ge=10, le=86_400, description="Length of one scoring window."
    )
    min_samples: int = Field(
        default=200,
        ge=1,
        le=100_000_000,
        description="Windows with fewer responses are not scored.",
    )
    consecutive_windows: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Drifted windows in a row before drift is confirmed.",
    )
    action: DriftAction = Field(
        default=DriftAction.ALERT,
        description="alert, quarantine, or rollback (Deployment targets only) to the "
        "captured revision.",
    )
    dry_run: bool = Field(
        default=False, description="Record what the action would do without doing it."
    )


class FeatureScore(ApiModel):
    """The latest score of one feature."""

    name: str = Field(max_length=63, description="The feature.")
    statistic: Statistic = Field(description="The statistic used.")
    value: float = Field(description="The score of the latest window.")
    threshold: float = Field(description="The threshold it was compared with.")
    drifted: bool = Field(description="Whether the value is above the threshold.")
    samples: int = Field(ge=0, description="Responses in the window.")
    at: datetime = Field(description="End of the scored window.")


class DriftBaselineStatus(ApiModel):
    """What the operator captured, scored and did."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation the status describes."
    )
    phase: BaselinePhase | None = Field(
        default=None, description="Capturing, then Active, or Drifted once drift is confirmed."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=16,
        description="Ready, and Invalid with the reason and the exact error.",
        json_schema_extra=CONDITIONS_FIELD_EXTRA,
    )
    captured_reference: list[FeatureReference] | None = Field(
        default=None,
        max_length=32,
        description="The reference in use, captured or copied from spec.reference.inline.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    captured_revision: str | None = Field(
        default=None,
        max_length=253,
        description="The workload revision the reference was captured on (the rollback target).",
    )
    captured_samples: int | None = Field(
        default=None, ge=0, description="Responses captured into the reference so far."
    )
    capture_started_at: datetime | None = Field(default=None, description="When capturing started.")
    scores: list[FeatureScore] | None = Field(
        default=None,
        max_length=32,
        description="Latest score per feature.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    consecutive_drifted_windows: int | None = Field(
        default=None, ge=0, description="Drifted windows in a row so far."
    )
    last_action: LastAction | None = Field(default=None, description="The last remediation taken.")
