"""The sidecar config: one JSON document, rendered by the operator into a ConfigMap.

The operator imports `SidecarConfig` to render it (``model_dump_json(by_alias=True)``);
the sidecar parses it with `parse_config`. Keys on the wire are camelCase (like the
CRD they come from); Python attributes are snake_case. Unknown keys are refused so a
typo in a rendered document is an error, not a silently ignored setting.

Field names are a contract with the operator: add fields freely, never rename or
remove one without bumping `version`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

CONFIG_VERSION: Literal[1] = 1

PositiveSeconds = Annotated[float, Field(gt=0, le=86_400)]
Port = Annotated[int, Field(ge=1, le=65_535)]
HeaderName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9-]+$")]


class _Model(BaseModel):
    """Common model settings: camelCase keys, frozen values, unknown keys refused."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )


class UpstreamProtocol(StrEnum):
    """How the sidecar understands the model's API."""

    OPENAI = "openai"
    """OpenAI-compatible chat/completions and completions, JSON and SSE streaming."""
    JSON = "json"
    """Any JSON-in, JSON-out API: request and response bodies are validated as JSON."""
    PASSTHROUGH = "passthrough"
    """Bodies are not parsed: only limits and metrics apply."""


class EnforcementAction(StrEnum):
    """Whether decisions block. Decisions are computed and recorded in every mode."""

    ENFORCE = "enforce"
    WARN = "warn"
    DRYRUN = "dryrun"


class FailurePolicy(StrEnum):
    """What happens to traffic when the policy engine cannot answer."""

    CLOSED = "closed"
    """Refuse with 503."""
    OPEN = "open"
    """Pass the request, counted and logged."""


class OnFailure(StrEnum):
    """What to do with a response that fails validation."""

    BLOCK = "block"
    REDACT = "redact"
    REASK = "reask"
    ANNOTATE = "annotate"


class TokenCapMode(StrEnum):
    """What to do with a request whose `max_tokens` exceeds the cap."""

    REJECT = "reject"
    CLAMP = "clamp"


class EngineKind(StrEnum):
    """Where Rego is evaluated."""

    EMBEDDED = "embedded"
    OPA = "opa"


class ListenConfig(_Model):
    """The proxied (client-facing) listener and its protections against slow or huge clients."""

    host: str = Field(default="0.0.0.0", description="Address to bind (the pod address).")
    port: Port = Field(default=8443, description="Port clients (the Service) connect to.")
    max_header_bytes: int = Field(
        default=16_384,
        ge=1_024,
        le=1_048_576,
        description="Largest request line or single header field accepted; larger gets 431/400.",
    )
    header_timeout_seconds: PositiveSeconds = Field(
        default=10.0,
        description="Time a client has to send the complete request head (slowloris guard).",
    )
    body_timeout_seconds: PositiveSeconds = Field(
        default=30.0, description="Time a client has to send the complete request body."
    )
    keepalive_timeout_seconds: PositiveSeconds = Field(
        default=15.0, description="How long an idle keep-alive connection is kept open."
    )


class AdminConfig(_Model):
    """The admin listener: /metrics, /healthz, /readyz, /v1/stats. Never proxied."""

    host: str = Field(default="0.0.0.0", description="Address to bind the admin listener.")
    port: Port = Field(default=9090, description="Admin port; must differ from the proxy port.")
    token: str | None = Field(
        default=None,
        min_length=16,
        description="Bearer token required on /v1/stats and /metrics when set (inline; dev use).",
    )
    token_file: str | None = Field(
        default=None,
        description="Path of a file (a mounted Secret) holding the bearer token; wins over token.",
    )


class UpstreamTimeouts(_Model):
    """Timeouts for calls to the model container; exceeding any gives the client a 504."""

    connect_seconds: PositiveSeconds = Field(default=2.0, description="TCP connect.")
    first_byte_seconds: PositiveSeconds = Field(
        default=60.0, description="From sending the request to the response head arriving."
    )
    total_seconds: PositiveSeconds = Field(
        default=300.0, description="Whole exchange, including a streamed body."
    )
    stream_idle_seconds: PositiveSeconds = Field(
        default=30.0, description="Longest gap between two chunks of a streamed response."
    )


class UpstreamConfig(_Model):
    """The model container the sidecar forwards to (same pod, loopback)."""

    host: str = Field(default="127.0.0.1", description="Model container address.")
    port: Port = Field(default=8000, description="Model container port.")
    protocol: UpstreamProtocol = Field(
        default=UpstreamProtocol.OPENAI, description="The model's API shape."
    )
    timeouts: UpstreamTimeouts = Field(default_factory=UpstreamTimeouts)
    max_connections: int = Field(
        default=100, ge=1, le=10_000, description="Size of the pooled upstream connection pool."
    )


class RateLimitKey(_Model):
    """What a rate limit counts per: the client IP, or the value of a header."""

    kind: Literal["clientIp", "header"] = Field(default="clientIp")
    header: HeaderName | None = Field(
        default=None, description="Header whose value is the key (e.g. x-api-key) when kind=header."
    )

    @model_validator(mode="after")
    def _header_given_for_header_kind(self) -> RateLimitKey:
        if self.kind == "header" and self.header is None:
            raise ValueError("rate limit key kind 'header' needs 'header' (the header name)")
        return self


class RateLimitConfig(_Model):
    """A token bucket per key."""

    requests_per_second: float = Field(gt=0, le=1_000_000, description="Sustained rate per key.")
    burst: int = Field(default=1, ge=1, le=1_000_000, description="Bucket size per key.")
    key: RateLimitKey = Field(default_factory=RateLimitKey)
    max_keys: int = Field(
        default=100_000, ge=1, description="Buckets kept; least recently used are evicted."
    )


class TokenCapConfig(_Model):
    """A cap on the completion tokens a request may ask for (`max_tokens`)."""

    max_tokens: int = Field(ge=1, description="Largest `max_tokens` allowed.")
    mode: TokenCapMode = Field(
        default=TokenCapMode.REJECT, description="Reject (400) or clamp to the cap."
    )
    default_when_missing: bool = Field(
        default=False,
        description="Set `max_tokens` to the cap when the request does not name one.",
    )


class SessionLimitConfig(_Model):
    """Limits on multi-step agent sessions, keyed by a header."""

    header: HeaderName = Field(default="x-session-id", description="Header naming the session.")
    max_steps: int | None = Field(default=None, ge=1, description="Requests per session.")
    max_total_tokens: int | None = Field(
        default=None, ge=1, description="Prompt + completion tokens per session."
    )
    ttl_seconds: PositiveSeconds = Field(
        default=3_600.0, description="A session expires this long after its last request."
    )
    max_sessions: int = Field(
        default=100_000, ge=1, description="Sessions tracked; least recently used are evicted."
    )


class BoundariesConfig(_Model):
    """Limits checked before the model is called."""

    max_request_bytes: int = Field(
        default=1_048_576, ge=1, description="Largest request body; checked while reading (413)."
    )
    max_response_bytes: int = Field(
        default=8_388_608,
        ge=1,
        description="Largest response body: a JSON body over it gets 502, a stream is cut.",
    )
    max_json_depth: int = Field(
        default=64, ge=1, le=1_000, description="Deepest JSON nesting accepted in a body (400)."
    )
    max_concurrent_requests: int = Field(
        default=64, ge=1, description="Requests in flight to the model at once."
    )
    max_queued_requests: int = Field(
        default=128, ge=0, description="Requests waiting for a slot; beyond that 503."
    )
    queue_timeout_seconds: PositiveSeconds = Field(
        default=5.0, description="Longest wait for a slot before 503 with Retry-After."
    )
    rate_limit: RateLimitConfig | None = Field(default=None)
    tokens: TokenCapConfig | None = Field(default=None)
    allowed_models: list[str] | None = Field(
        default=None, description="Model names a request may name; null allows any."
    )
    allowed_tools: list[str] | None = Field(
        default=None, description="Function-calling tool names a request may declare."
    )
    sessions: SessionLimitConfig | None = Field(default=None)


class RedactionRule(_Model):
    """A pattern whose matches are replaced in the body that reaches the client."""

    name: str = Field(min_length=1, max_length=63, description="Shown in metrics and the audit.")
    pattern: str = Field(min_length=1, description="Python regular expression.")
    replacement: str = Field(default="[REDACTED]", description="Text put in place of a match.")
    max_match_chars: int = Field(
        default=256,
        ge=1,
        le=65_536,
        description="Longest match expected; bounds the text held back while streaming.",
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"pattern does not compile: {error}") from error
        return pattern


class RequestValidationConfig(_Model):
    """Checks on the client's request."""

    rego: dict[str, str] = Field(
        default_factory=dict,
        description="Rego modules (name -> source) defining data.execguard.request.",
    )
    json_schema: dict[str, JsonValue] | None = Field(
        default=None, description="JSON Schema the request body must match (json protocol)."
    )


class ResponseValidationConfig(_Model):
    """Checks on the model's response."""

    rego: dict[str, str] = Field(
        default_factory=dict,
        description="Rego modules defining data.execguard.response and data.execguard.stream.",
    )
    json_schema: dict[str, JsonValue] | None = Field(
        default=None,
        description=(
            "JSON Schema for structured output: for openai, the assistant message content "
            "must parse as JSON and match; for json, the whole body must match."
        ),
    )
    redaction: list[RedactionRule] = Field(default_factory=list)
    on_failure: OnFailure = Field(default=OnFailure.BLOCK)
    max_reasks: int = Field(default=1, ge=0, le=5, description="Extra model calls for reask.")
    reask_timeout_seconds: PositiveSeconds = Field(
        default=60.0, description="Time budget for all reasks of one request together."
    )


class ValidationConfig(_Model):
    """Request and response validation, and what policies see as parameters and data."""

    request: RequestValidationConfig = Field(default_factory=RequestValidationConfig)
    response: ResponseValidationConfig = Field(default_factory=ResponseValidationConfig)
    params: dict[str, JsonValue] = Field(
        default_factory=dict, description="Visible to rules as input.params."
    )
    data: dict[str, JsonValue] = Field(
        default_factory=dict, description="The engine's data document (data.*)."
    )
    policy_headers: list[HeaderName] = Field(
        default_factory=lambda: ["content-type", "user-agent", "x-session-id"],
        description="Request headers rules may see; all others are withheld from policies.",
    )

    @model_validator(mode="after")
    def _module_names_unique(self) -> ValidationConfig:
        shared = set(self.request.rego) & set(self.response.rego)
        if shared:
            raise ValueError(
                f"Rego module names must be unique across request and response: {sorted(shared)}"
            )
        return self


class StreamingConfig(_Model):
    """How streamed (SSE) responses are checked as they pass."""

    check_interval_tokens: int = Field(
        default=16, ge=1, description="Run stream rules at most every N content chunks."
    )
    check_interval_bytes: int = Field(
        default=512, ge=1, description="...or every N bytes of text, whichever comes first."
    )


class EngineConfig(_Model):
    """The Rego engine."""

    kind: EngineKind = Field(default=EngineKind.EMBEDDED)
    opa_url: str = Field(
        default="http://127.0.0.1:8181", description="OPA server address when kind=opa."
    )
    timeout_seconds: PositiveSeconds = Field(default=1.0, description="Budget per evaluation.")


class WorkloadIdentity(_Model):
    """Where the sidecar runs; visible to rules as input.workload."""

    namespace: str = ""
    pod: str = ""
    labels: dict[str, str] = Field(default_factory=dict)


class PolicyRef(_Model):
    """A policy object that contributed to this config (for metrics and the audit log)."""

    name: str
    namespace: str | None = Field(default=None, description="Null for cluster-scoped policies.")
    generation: int = Field(default=0, ge=0)


class StatsConfig(_Model):
    """Windows for GET /v1/stats."""

    window_seconds: PositiveSeconds = Field(default=60.0, description="Length of one window.")
    windows_kept: int = Field(default=60, ge=1, le=10_000, description="Closed windows retained.")


class AuditConfig(_Model):
    """The decision audit log (JSON lines)."""

    enabled: bool = True
    path: str | None = Field(default=None, description="File to append to; null means stderr.")
    excerpt_chars: int = Field(
        default=120, ge=0, le=4_096, description="Longest (redacted) excerpt kept per record."
    )


class SidecarConfig(_Model):
    """The whole sidecar config document."""

    version: Literal[1] = Field(default=CONFIG_VERSION, description="Schema version.")
    generation: int = Field(
        default=0, ge=0, description="Bumped by the operator on every change; shown in /readyz."
    )
    policies: list[PolicyRef] = Field(default_factory=list)
    listen: ListenConfig = Field(default_factory=ListenConfig)
    admin: AdminConfig = Field(default_factory=AdminConfig)
    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    boundaries: BoundariesConfig = Field(default_factory=BoundariesConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    streaming: StreamingConfig = Field(default_factory=StreamingConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    failure_policy: FailurePolicy = Field(default=FailurePolicy.CLOSED)
    enforcement_action: EnforcementAction = Field(default=EnforcementAction.ENFORCE)
    drain_grace_seconds: PositiveSeconds = Field(
        default=25.0, description="On SIGTERM, how long in-flight requests get to finish."
    )
    workload: WorkloadIdentity = Field(default_factory=WorkloadIdentity)
    stats: StatsConfig = Field(default_factory=StatsConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)

    @model_validator(mode="after")
    def _ports_distinct(self) -> SidecarConfig:
        if self.admin.port == self.listen.port:
            raise ValueError("admin.port must differ from listen.port")
        if self.listen.port == self.upstream.port and self.upstream.host in (
            "127.0.0.1",
            "localhost",
            "::1",
        ):
            raise ValueError("listen.port equals upstream.port on loopback: the proxy would loop")
        return self

    @property
    def policy_label(self) -> str:
        """A short name for the policies behind this config, for metric labels."""
        if not self.policies:
            return "none"
        return ",".join(sorted(ref.name for ref in self.policies))

    @property
    def rego_modules(self) -> dict[str, str]:
        """Request and response modules together, as the engine loads them."""
        return {**self.validation.request.rego, **self.validation.response.rego}


class ConfigError(Exception):
    """The config document cannot be used; the message says where and why."""


def parse_config(text: str | bytes) -> SidecarConfig:
    """Parse and validate a config document, or raise `ConfigError` with exact locations."""
    try:
        return SidecarConfig.model_validate_json(text)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or '<document>'}: {issue['msg']}"
            for issue in error.errors(include_url=False)
        )
        raise ConfigError(f"invalid sidecar config: {problems}") from error
