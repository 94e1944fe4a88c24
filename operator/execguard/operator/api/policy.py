"""ExecutionPolicy (namespaced) and ClusterExecutionPolicy (cluster-scoped).

Field names follow the sidecar config document (`execguard.sidecar.config`), and
the enums shared with it are imported from it, so that rendering is a near
one-to-one mapping and the two can never drift apart; what the CRD adds is
selection, thresholds and the status.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final

from pydantic import ConfigDict, Field

from execguard.operator.api.base import (
    CONDITIONS_FIELD_EXTRA,
    DNS_LABEL_PATTERN,
    NON_EMPTY_SELECTOR_RULE,
    ApiModel,
    Condition,
    FreeFormObject,
    IntOrString,
    LabelSelector,
    cel,
    validations,
)

# Re-exported: these enums are part of this module's API (the CRD's vocabulary).
from execguard.sidecar.config import (
    EnforcementAction as EnforcementAction,
    EngineKind as EngineKind,
    FailurePolicy as FailurePolicy,
    OnFailure as OnFailure,
    TokenCapMode as TokenCapMode,
    UpstreamProtocol as UpstreamProtocol,
)

MAX_REGO_MODULE_BYTES: Final = 65_536
"""Largest Rego module accepted (characters); larger ones are refused by the apiserver."""

MAX_REGO_MODULES_PER_PHASE: Final = 8

HEADER_NAME_PATTERN: Final = r"^[A-Za-z0-9-]+$"


class RateLimitKeyKind(StrEnum):
    """What a rate limit counts per."""

    CLIENT_IP = "clientIp"
    HEADER = "header"


class ThresholdSignal(StrEnum):
    """A signal the operator evaluates over a window of sidecar statistics."""

    VIOLATION_RATE = "violationRate"
    ERROR_RATE = "errorRate"
    SCHEMA_FAILURE_RATE = "schemaFailureRate"
    LATENCY = "latency"


class ThresholdAction(StrEnum):
    """What the operator does when a threshold is breached."""

    ALERT = "alert"
    QUARANTINE = "quarantine"
    ROLLBACK = "rollback"


class UpstreamTimeouts(ApiModel):
    """Timeouts for calls from the sidecar to the model container."""

    connect_seconds: float = Field(
        default=2.0, gt=0, le=300, description="TCP connect timeout in seconds."
    )
    first_byte_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds from sending the request until the response head arrives.",
    )
    total_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="Seconds for the whole exchange, including a streamed body.",
    )


class Upstream(ApiModel):
    """The model container the sidecar forwards to, in the same pod."""

    port: IntOrString = Field(
        default=8000,
        description="Model container port: a number (1-65535) or a container port name.",
        json_schema_extra=validations(
            cel(
                "type(self) == int ? (self >= 1 && self <= 65535)"
                " : self.matches('^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$')",
                "port must be a number between 1 and 65535 or a port name of at most 15 "
                "lowercase letters, digits and dashes",
            )
        ),
    )
    protocol: UpstreamProtocol = Field(
        default=UpstreamProtocol.OPENAI,
        description="openai (chat/completions incl. SSE streaming), json, or passthrough "
        "(bodies are not parsed; only limits apply).",
    )
    timeouts: UpstreamTimeouts | None = Field(
        default=None, description="Timeouts for calls to the model container."
    )


class RateLimitKey(ApiModel):
    """What a rate limit counts per: the client IP address, or a header's value."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.kind != 'header' || has(self.header)",
                "kind 'header' needs header (the header name, e.g. x-api-key)",
            )
        )
    )

    kind: RateLimitKeyKind = Field(
        default=RateLimitKeyKind.CLIENT_IP, description="clientIp or header."
    )
    header: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=HEADER_NAME_PATTERN,
        description="The header whose value is the key when kind is header.",
    )


class RateLimit(ApiModel):
    """A token bucket per key: a sustained rate and a burst."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.burst) || double(self.burst) >= self.requestsPerSecond",
                "burst must be at least requestsPerSecond",
                field_path=".burst",
            )
        )
    )

    requests_per_second: float = Field(
        gt=0, le=1_000_000, description="Sustained requests per second per key."
    )
    burst: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Bucket size per key; at least requestsPerSecond. "
        "Defaults to requestsPerSecond rounded up.",
    )
    key: RateLimitKey | None = Field(
        default=None, description="What the limit counts per; the client IP when omitted."
    )


class TokenCap(ApiModel):
    """A cap on the completion tokens a request may ask for (`max_tokens`)."""

    max_tokens: int = Field(ge=1, le=10_000_000, description="Largest max_tokens allowed.")
    mode: TokenCapMode = Field(
        default=TokenCapMode.REJECT,
        description="reject refuses the request (400); clamp lowers max_tokens to the cap.",
    )


class SessionLimits(ApiModel):
    """Limits on multi-step (agent) sessions, keyed by a request header."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.maxSteps) || has(self.maxTotalTokens)",
                "sessions needs maxSteps or maxTotalTokens",
            )
        )
    )

    header: str = Field(
        default="x-session-id",
        min_length=1,
        max_length=256,
        pattern=HEADER_NAME_PATTERN,
        description="The request header naming the session.",
    )
    max_steps: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Requests allowed per session."
    )
    max_total_tokens: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="Prompt plus completion tokens allowed per session.",
    )
    ttl_seconds: int = Field(
        default=3600,
        ge=1,
        le=604_800,
        description="A session is forgotten this many seconds after its last request.",
    )


ModelName = Annotated[str, Field(min_length=1, max_length=253)]


class Boundaries(ApiModel):
    """Hard limits checked by the sidecar before the model is called."""

    max_request_bytes: int | None = Field(
        default=None,
        ge=1,
        le=67_108_864,
        description="Largest request body in bytes (413 above it). Default 1 MiB.",
    )
    max_response_bytes: int | None = Field(
        default=None,
        ge=1,
        le=268_435_456,
        description="Largest non-streamed response body in bytes (502 above it). Default 8 MiB.",
    )
    max_concurrent_requests: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Requests in flight to the model at once. Default 64.",
    )
    rate_limit: RateLimit | None = Field(default=None, description="A rate limit per key.")
    tokens: TokenCap | None = Field(
        default=None, description="A cap on the completion tokens a request may ask for."
    )
    allowed_models: list[ModelName] | None = Field(
        default=None,
        max_length=256,
        description="Model names a request may name; any model when omitted.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    allowed_tools: list[ModelName] | None = Field(
        default=None,
        max_length=256,
        description="Function-calling tool names a request may declare; any tool when omitted.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    sessions: SessionLimits | None = Field(
        default=None, description="Limits on multi-step sessions."
    )


class RegoModule(ApiModel):
    """One Rego module. Request modules define data.execguard.request; response modules
    define data.execguard.response and data.execguard.stream."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$",
        description="Module name, shown with the line number in compile errors.",
    )
    rego: str = Field(
        min_length=1,
        max_length=MAX_REGO_MODULE_BYTES,
        description=f"The Rego source, at most {MAX_REGO_MODULE_BYTES} characters.",
    )


class RedactionRule(ApiModel):
    """A regular expression whose matches are replaced before the response reaches the client."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Rule name, shown in metrics and the audit log.",
    )
    pattern: str = Field(min_length=1, max_length=4096, description="A Python regular expression.")
    replacement: str = Field(
        default="[REDACTED]", max_length=256, description="Text put in place of each match."
    )


class RequestValidation(ApiModel):
    """Checks on the client's request before it reaches the model."""

    policies: list[RegoModule] = Field(
        default_factory=list,
        max_length=MAX_REGO_MODULES_PER_PHASE,
        description="Rego modules defining data.execguard.request.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    json_schema: FreeFormObject | None = Field(
        default=None,
        description="A JSON Schema (an object) the request body must match.",
    )


class ResponseValidation(ApiModel):
    """Checks on the model's response before it reaches the client."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.onFailure != 'reask' || has(self.maxReasks)",
                "onFailure 'reask' needs maxReasks (the bound on extra model calls)",
                field_path=".maxReasks",
            ),
            cel(
                "self.onFailure != 'redact' || (has(self.redaction) && size(self.redaction) > 0)",
                "onFailure 'redact' needs at least one redaction rule",
                field_path=".redaction",
            ),
        )
    )

    policies: list[RegoModule] = Field(
        default_factory=list,
        max_length=MAX_REGO_MODULES_PER_PHASE,
        description="Rego modules defining data.execguard.response and data.execguard.stream.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    json_schema: FreeFormObject | None = Field(
        default=None,
        description="A JSON Schema (an object) for structured output: the assistant content "
        "(openai) or the whole body (json) must match it.",
    )
    redaction: list[RedactionRule] | None = Field(
        default=None,
        max_length=32,
        description="Patterns redacted from responses.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    on_failure: OnFailure = Field(
        default=OnFailure.BLOCK,
        description="block, redact, reask (bounded retries with a hint) or annotate.",
    )
    max_reasks: int | None = Field(
        default=None,
        ge=1,
        le=5,
        description="Extra model calls allowed when onFailure is reask.",
    )


class Validation(ApiModel):
    """Request and response validation."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.request) || !has(self.request.policies)"
                " || !has(self.response) || !has(self.response.policies)"
                " || !self.request.policies.exists(p,"
                " self.response.policies.exists(q, q.name == p.name))",
                "Rego module names must be unique across request and response",
            )
        )
    )

    request: RequestValidation | None = Field(
        default=None, description="Checks on the client's request."
    )
    response: ResponseValidation | None = Field(
        default=None, description="Checks on the model's response."
    )


class Threshold(ApiModel):
    """A signal evaluated per window over all matched pods, and what to do when it is breached."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.signal == 'latency' || self.max <= 1.0",
                "rate thresholds (violationRate, errorRate, schemaFailureRate) are fractions "
                "between 0 and 1",
                field_path=".max",
            ),
            cel(
                "self.signal == 'latency' ? has(self.quantile) : !has(self.quantile)",
                "quantile is required for the latency signal and only allowed there",
                field_path=".quantile",
            ),
        )
    )

    name: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN, description="Threshold name."
    )
    signal: ThresholdSignal = Field(
        description="violationRate, errorRate, schemaFailureRate (fractions) or latency "
        "(milliseconds at a quantile)."
    )
    quantile: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="For latency: the quantile compared, e.g. 0.99.",
    )
    max: float = Field(
        ge=0,
        le=86_400_000,
        description="The largest acceptable value: a fraction (0-1) for rates, "
        "milliseconds for latency.",
    )
    window_seconds: int = Field(
        default=300, ge=10, le=86_400, description="Length of one evaluation window."
    )
    min_samples: int = Field(
        default=100,
        ge=1,
        le=100_000_000,
        description="Windows with fewer requests are not evaluated.",
    )
    consecutive_windows: int = Field(
        default=1,
        ge=1,
        le=100,
        description="Breaching windows in a row before the action is taken.",
    )
    action: ThresholdAction = Field(
        default=ThresholdAction.ALERT,
        description="alert, quarantine (the breaching pods) or rollback (the owning "
        "Deployment to its previous revision).",
    )
    cooldown_seconds: int = Field(
        default=600,
        ge=0,
        le=604_800,
        description="Seconds after an action during which it is not repeated.",
    )


class PolicySpecFields(ApiModel):
    """Fields common to ExecutionPolicy and ClusterExecutionPolicy."""

    enforcement_action: EnforcementAction = Field(
        default=EnforcementAction.ENFORCE,
        description="enforce blocks; warn and dryrun only record decisions.",
    )
    upstream: Upstream | None = Field(
        default=None, description="The model container the sidecar forwards to."
    )
    boundaries: Boundaries | None = Field(
        default=None, description="Size, concurrency, rate, token, model, tool and session limits."
    )
    validation: Validation | None = Field(
        default=None,
        description="Rego policies, JSON Schemas and redaction for requests and responses.",
    )
    engine: EngineKind = Field(
        default=EngineKind.EMBEDDED,
        description="embedded (Rego in the sidecar process) or opa (an OPA server beside it).",
    )
    failure_policy: FailurePolicy = Field(
        default=FailurePolicy.CLOSED,
        description="closed refuses traffic (503) and open passes it when the engine or the "
        "config is unavailable.",
    )
    thresholds: list[Threshold] | None = Field(
        default=None,
        max_length=16,
        description="Signals the operator evaluates, with the action taken on a breach.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )


class ExecutionPolicySpec(PolicySpecFields):
    """The desired execution policy for the selected pods of this namespace."""

    selector: LabelSelector = Field(
        description="Which pods of this namespace the policy applies to; must not be empty. "
        "Pods also need the opt-in label execguard.io/inject=enabled (on the pod or the "
        "namespace).",
        json_schema_extra=validations(
            cel(
                NON_EMPTY_SELECTOR_RULE,
                "selector must not be empty: it would select every pod in the namespace",
            )
        ),
    )


class ClusterExecutionPolicySpec(PolicySpecFields):
    """The desired execution policy for selected pods in selected namespaces."""

    namespace_selector: LabelSelector = Field(
        description="Which namespaces the policy applies in; must not be empty.",
        json_schema_extra=validations(
            cel(
                NON_EMPTY_SELECTOR_RULE,
                "namespaceSelector must not be empty: it would select every namespace, "
                "kube-system included",
            )
        ),
    )
    selector: LabelSelector | None = Field(
        default=None,
        description="Which pods of the selected namespaces; every opted-in pod when omitted.",
    )


class LastAction(ApiModel):
    """The last remediation the operator took."""

    type: str = Field(max_length=63, description="alert, quarantine or rollback.")
    reason: str = Field(max_length=1024, description="Why, e.g. the threshold and its value.")
    at: datetime = Field(description="When the action was taken.")


class PolicyStatus(ApiModel):
    """What the operator observed and did for the policy."""

    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation the status describes.",
    )
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=16,
        description="Ready, and Invalid with the reason and the exact error.",
        json_schema_extra=CONDITIONS_FIELD_EXTRA,
    )
    matched_pods: int | None = Field(
        default=None, ge=0, description="Opted-in pods the policy selects now."
    )
    rendered_namespaces: list[Annotated[str, Field(max_length=63)]] | None = Field(
        default=None,
        max_length=10_000,
        description="Namespaces whose sidecar ConfigMap carries this policy.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    last_good_generation: int | None = Field(
        default=None,
        ge=0,
        description="The newest generation that passed validation and is in effect.",
    )
    violations: int | None = Field(
        default=None, ge=0, description="Denied requests and responses in the last window."
    )
    last_action: LastAction | None = Field(default=None, description="The last remediation taken.")
