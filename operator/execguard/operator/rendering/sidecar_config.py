"""A merged policy → the sidecar's config document (`execguard.sidecar.config.SidecarConfig`).

Only fields a policy expresses are set; everything else keeps the sidecar's
defaults, so the sidecar package stays the one place those defaults live.
"""

from __future__ import annotations

import math
from typing import Any

from execguard.operator.merging import MergedPolicy
from execguard.sidecar.config import (
    BoundariesConfig,
    EnforcementAction as SidecarEnforcement,
    EngineConfig,
    EngineKind,
    FailurePolicy as SidecarFailurePolicy,
    OnFailure as SidecarOnFailure,
    PolicyRef,
    RateLimitConfig,
    RateLimitKey,
    RedactionRule,
    RequestValidationConfig,
    ResponseValidationConfig,
    SessionLimitConfig,
    SidecarConfig,
    TokenCapConfig,
    TokenCapMode,
    UpstreamConfig,
    UpstreamProtocol,
    UpstreamTimeouts,
    ValidationConfig,
)


def _combined_schema(schemas: tuple[dict[str, Any], ...]) -> dict[str, Any] | None:
    """One schema every given schema must hold for (all apply)."""
    if not schemas:
        return None
    if len(schemas) == 1:
        return schemas[0]
    return {"allOf": list(schemas)}


def _boundaries(merged: MergedPolicy) -> BoundariesConfig:
    bounds = merged.boundaries
    values: dict[str, Any] = {}
    if bounds.max_request_bytes is not None:
        values["max_request_bytes"] = bounds.max_request_bytes
    if bounds.max_response_bytes is not None:
        values["max_response_bytes"] = bounds.max_response_bytes
    if bounds.max_concurrent_requests is not None:
        values["max_concurrent_requests"] = bounds.max_concurrent_requests
    if bounds.rate_limit is not None:
        limit = bounds.rate_limit
        key = limit.key
        values["rate_limit"] = RateLimitConfig(
            requests_per_second=limit.requests_per_second,
            burst=limit.burst
            if limit.burst is not None
            else max(1, math.ceil(limit.requests_per_second)),
            key=RateLimitKey(kind=key.kind.value, header=key.header)
            if key is not None
            else RateLimitKey(),
        )
    if bounds.tokens is not None:
        values["tokens"] = TokenCapConfig(
            max_tokens=bounds.tokens.max_tokens, mode=TokenCapMode(bounds.tokens.mode.value)
        )
    values["allowed_models"] = bounds.allowed_models
    values["allowed_tools"] = bounds.allowed_tools
    if bounds.sessions is not None:
        sessions = bounds.sessions
        values["sessions"] = SessionLimitConfig(
            header=sessions.header,
            max_steps=sessions.max_steps,
            max_total_tokens=sessions.max_total_tokens,
            ttl_seconds=float(sessions.ttl_seconds),
        )
    return BoundariesConfig(**values)


def _validation(merged: MergedPolicy) -> ValidationConfig:
    validation = merged.validation
    response: dict[str, Any] = {
        "rego": validation.response_modules,
        "json_schema": _combined_schema(validation.response_schemas),
        "redaction": [
            RedactionRule(name=rule.name, pattern=rule.pattern, replacement=rule.replacement)
            for rule in validation.redaction
        ],
    }
    if validation.on_failure is not None:
        response["on_failure"] = SidecarOnFailure(validation.on_failure.value)
    if validation.max_reasks is not None:
        response["max_reasks"] = validation.max_reasks
    return ValidationConfig(
        request=RequestValidationConfig(
            rego=validation.request_modules,
            json_schema=_combined_schema(validation.request_schemas),
        ),
        response=ResponseValidationConfig(**response),
    )


def _upstream(merged: MergedPolicy, port: int) -> UpstreamConfig:
    values: dict[str, Any] = {"port": port}
    if merged.upstream.protocol is not None:
        values["protocol"] = UpstreamProtocol(merged.upstream.protocol.value)
    timeouts = merged.upstream.timeouts
    if timeouts is not None:
        values["timeouts"] = UpstreamTimeouts(
            connect_seconds=timeouts.connect_seconds,
            first_byte_seconds=timeouts.first_byte_seconds,
            total_seconds=timeouts.total_seconds,
        )
    return UpstreamConfig(**values)


def render_sidecar_config(merged: MergedPolicy, *, port: int, generation: int) -> SidecarConfig:
    """The config for pods selected by exactly `merged.sources`, whose model listens on `port`."""
    return SidecarConfig(
        generation=generation,
        policies=[
            PolicyRef(
                name=source.key.name,
                namespace=source.key.namespace,
                generation=source.generation,
            )
            for source in merged.sources
        ],
        upstream=_upstream(merged, port),
        boundaries=_boundaries(merged),
        validation=_validation(merged),
        engine=EngineConfig(kind=EngineKind(merged.engine.value)),
        failure_policy=SidecarFailurePolicy(merged.failure_policy.value),
        enforcement_action=SidecarEnforcement(merged.enforcement_action.value),
    )


def render_passthrough_config(*, port: int, generation: int) -> SidecarConfig:
    """The config for a pod whose last policy is gone: forward everything, block nothing.

    The empty `policies` list is what tells the sidecar to log a warning that it
    runs without a policy; `dryrun` and `open` make sure nothing is refused.
    """
    return SidecarConfig(
        generation=generation,
        policies=[],
        upstream=UpstreamConfig(port=port, protocol=UpstreamProtocol.PASSTHROUGH),
        enforcement_action=SidecarEnforcement.DRYRUN,
        failure_policy=SidecarFailurePolicy.OPEN,
    )
