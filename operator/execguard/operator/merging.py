"""What applies to a pod that several policies select.

Semantics (documented in docs/api.md, pinned by tests/unit/operator/test_merging.py):

* **All apply.** Every Rego module, JSON Schema and redaction rule of every
  selecting policy is in effect. Rego modules of one phase share a package, so
  `deny contains ...` rules from different policies add up; JSON Schemas are
  combined with `allOf`.
* **The strictest boundary wins.** Numeric limits take the minimum; allowed
  model and tool lists intersect; `enforce` beats `warn` beats `dryrun`;
  `closed` beats `open`; `block` beats `reask` beats `redact` beats `annotate`;
  a token cap's `reject` beats `clamp`; the rate limit with the lowest sustained
  rate wins whole (rate, burst and key together, as the sidecar keeps one bucket
  per key). Session TTLs take the maximum, since a longer memory is stricter.
* **A namespaced policy cannot loosen a cluster policy.** Follows from the above:
  no merge step lets a value become more permissive than any input's.
* Facts about the workload that are not boundaries (upstream port and protocol,
  session header, engine) are taken from the first policy in precedence order:
  namespaced before cluster-scoped, then by name. Disagreements are reported as
  conflicts, never silently dropped. `opa` is chosen as engine if any policy asks
  for it, since the OPA server evaluates everything the embedded engine does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, TypeVar, cast

from execguard.operator.api.base import LabelSelector
from execguard.operator.api.policy import (
    Boundaries,
    ClusterExecutionPolicySpec,
    EnforcementAction,
    EngineKind,
    ExecutionPolicySpec,
    FailurePolicy,
    OnFailure,
    PolicySpecFields,
    RateLimit,
    RedactionRule,
    RegoModule,
    SessionLimits,
    TokenCap,
    TokenCapMode,
    UpstreamProtocol,
    UpstreamTimeouts,
)

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

# Strictest first.
ENFORCEMENT_ORDER: Final = (
    EnforcementAction.ENFORCE,
    EnforcementAction.WARN,
    EnforcementAction.DRYRUN,
)
FAILURE_POLICY_ORDER: Final = (FailurePolicy.CLOSED, FailurePolicy.OPEN)
ON_FAILURE_ORDER: Final = (OnFailure.BLOCK, OnFailure.REASK, OnFailure.REDACT, OnFailure.ANNOTATE)


class Scope(StrEnum):
    """Where a policy object lives."""

    NAMESPACED = "ExecutionPolicy"
    CLUSTER = "ClusterExecutionPolicy"


@dataclass(frozen=True, order=True)
class PolicyKey:
    """Identifies a policy object; orders namespaced policies before cluster ones, then by name."""

    scope_rank: int
    name: str
    namespace: str | None

    @classmethod
    def of(cls, scope: Scope, name: str, namespace: str | None) -> PolicyKey:
        """Key for a policy of `scope` named `name` (namespace None for cluster scope)."""
        return cls(0 if scope is Scope.NAMESPACED else 1, name, namespace)

    @property
    def scope(self) -> Scope:
        """ExecutionPolicy or ClusterExecutionPolicy."""
        return Scope.NAMESPACED if self.scope_rank == 0 else Scope.CLUSTER

    @property
    def slug(self) -> str:
        """A short, unique, file-name-safe id within one namespace: `xp.<name>` / `cxp.<name>`."""
        prefix = "xp" if self.scope is Scope.NAMESPACED else "cxp"
        return f"{prefix}.{self.name}"


@dataclass(frozen=True)
class AppliedPolicy:
    """One policy's spec as it takes part in a merge (its last valid generation)."""

    key: PolicyKey
    generation: int
    spec: ExecutionPolicySpec | ClusterExecutionPolicySpec
    selector: LabelSelector | None
    namespace_selector: LabelSelector | None = None

    def selects(self, namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str]) -> bool:
        """Whether this policy applies to a pod with these labels in such a namespace."""
        if self.namespace_selector is not None and not self.namespace_selector.matches(
            namespace_labels
        ):
            return False
        return self.selector is None or self.selector.matches(pod_labels)


@dataclass(frozen=True)
class EffectiveUpstream:
    """The merged upstream (port still possibly a name, resolved per pod later)."""

    port: int | str | None
    protocol: UpstreamProtocol | None
    timeouts: UpstreamTimeouts | None


@dataclass(frozen=True)
class EffectiveValidation:
    """Every module and rule of every policy, names prefixed with the policy's slug."""

    request_modules: dict[str, str]
    response_modules: dict[str, str]
    request_schemas: tuple[dict[str, object], ...]
    response_schemas: tuple[dict[str, object], ...]
    redaction: tuple[RedactionRule, ...]
    on_failure: OnFailure | None
    max_reasks: int | None


@dataclass(frozen=True)
class MergedPolicy:
    """What a pod selected by `sources` must enforce."""

    sources: tuple[AppliedPolicy, ...]
    enforcement_action: EnforcementAction
    failure_policy: FailurePolicy
    engine: EngineKind
    upstream: EffectiveUpstream
    boundaries: Boundaries
    validation: EffectiveValidation
    conflicts: tuple[str, ...] = field(default=())


def merge(policies: Iterable[AppliedPolicy]) -> MergedPolicy:
    """Merge the policies selecting one pod; see the module docstring for the rules."""
    ordered = tuple(sorted(policies, key=lambda policy: policy.key))
    if not ordered:
        raise ValueError("merge needs at least one policy")
    specs = [policy.spec for policy in ordered]
    conflicts: list[str] = []
    return MergedPolicy(
        sources=ordered,
        enforcement_action=_strictest(
            [spec.enforcement_action for spec in specs], ENFORCEMENT_ORDER
        ),
        failure_policy=_strictest([spec.failure_policy for spec in specs], FAILURE_POLICY_ORDER),
        engine=(
            EngineKind.OPA
            if any(spec.engine is EngineKind.OPA for spec in specs)
            else EngineKind.EMBEDDED
        ),
        upstream=_merge_upstream(ordered, conflicts),
        boundaries=_merge_boundaries(ordered, conflicts),
        validation=_merge_validation(ordered),
        conflicts=tuple(conflicts),
    )


def _strictest(values: Sequence[E], order: Sequence[E]) -> E:
    return min(values, key=order.index)


def _present(values: Iterable[T | None]) -> list[T]:
    return [value for value in values if value is not None]


def _minimum(values: Iterable[T | None], key: Callable[[T], float] | None = None) -> T | None:
    present = _present(values)
    if not present:
        return None
    return min(present, key=key) if key else min(present)  # type: ignore[type-var]


def _first_agreed(
    ordered: Sequence[AppliedPolicy],
    pick: Callable[[PolicySpecFields], T | None],
    what: str,
    conflicts: list[str],
) -> T | None:
    """The first policy's value; a differing value elsewhere is reported as a conflict."""
    chosen: tuple[PolicyKey, T] | None = None
    for policy in ordered:
        value = pick(policy.spec)
        if value is None:
            continue
        if chosen is None:
            chosen = (policy.key, value)
        elif value != chosen[1]:
            conflicts.append(
                f"{what}: {policy.key.slug} asks for {value!s}, "
                f"{chosen[0].slug} (which takes precedence) for {chosen[1]!s}"
            )
    return None if chosen is None else chosen[1]


def _upstream_port(spec: PolicySpecFields) -> int | str | None:
    return spec.upstream.port if spec.upstream else None


def _merge_upstream(ordered: Sequence[AppliedPolicy], conflicts: list[str]) -> EffectiveUpstream:
    upstreams = [policy.spec.upstream for policy in ordered]
    timeouts = _present(upstream.timeouts if upstream else None for upstream in upstreams)
    return EffectiveUpstream(
        port=cast(
            "int | str | None", _first_agreed(ordered, _upstream_port, "upstream.port", conflicts)
        ),
        protocol=_first_agreed(
            ordered,
            lambda spec: spec.upstream.protocol if spec.upstream else None,
            "upstream.protocol",
            conflicts,
        ),
        timeouts=UpstreamTimeouts(
            connect_seconds=min(t.connect_seconds for t in timeouts),
            first_byte_seconds=min(t.first_byte_seconds for t in timeouts),
            total_seconds=min(t.total_seconds for t in timeouts),
        )
        if timeouts
        else None,
    )


def _intersect(lists: Iterable[list[str] | None]) -> list[str] | None:
    """Intersection of the given lists, keeping the first list's order; None means any."""
    result: list[str] | None = None
    for names in lists:
        if names is None:
            continue
        result = list(names) if result is None else [name for name in result if name in names]
    return result


def _rate_strictness(limit: RateLimit) -> tuple[float, float]:
    burst = limit.burst if limit.burst is not None else math.ceil(limit.requests_per_second)
    return (limit.requests_per_second, burst)


def _merge_tokens(caps: list[TokenCap]) -> TokenCap | None:
    if not caps:
        return None
    mode = (
        TokenCapMode.REJECT
        if any(cap.mode is TokenCapMode.REJECT for cap in caps)
        else TokenCapMode.CLAMP
    )
    return TokenCap(max_tokens=min(cap.max_tokens for cap in caps), mode=mode)


def _merge_sessions(ordered: Sequence[AppliedPolicy], conflicts: list[str]) -> SessionLimits | None:
    sessions = _present(p.spec.boundaries.sessions if p.spec.boundaries else None for p in ordered)
    if not sessions:
        return None
    header = _first_agreed(
        ordered,
        lambda spec: (
            spec.boundaries.sessions.header
            if spec.boundaries and spec.boundaries.sessions
            else None
        ),
        "boundaries.sessions.header",
        conflicts,
    )
    return SessionLimits(
        header=header or sessions[0].header,
        max_steps=_minimum(s.max_steps for s in sessions),
        max_total_tokens=_minimum(s.max_total_tokens for s in sessions),
        ttl_seconds=max(s.ttl_seconds for s in sessions),
    )


def _merge_boundaries(ordered: Sequence[AppliedPolicy], conflicts: list[str]) -> Boundaries:
    bounds = _present(policy.spec.boundaries for policy in ordered)
    return Boundaries(
        max_request_bytes=_minimum(b.max_request_bytes for b in bounds),
        max_response_bytes=_minimum(b.max_response_bytes for b in bounds),
        max_concurrent_requests=_minimum(b.max_concurrent_requests for b in bounds),
        rate_limit=_minimum((b.rate_limit for b in bounds), key=_rate_strictness),  # type: ignore[arg-type]
        tokens=_merge_tokens(_present(b.tokens for b in bounds)),
        allowed_models=_intersect(b.allowed_models for b in bounds),
        allowed_tools=_intersect(b.allowed_tools for b in bounds),
        sessions=_merge_sessions(ordered, conflicts),
    )


def _modules(policy: AppliedPolicy, modules: Iterable[RegoModule]) -> dict[str, str]:
    return {f"{policy.key.slug}/{module.name}": module.rego for module in modules}


def _merge_validation(ordered: Sequence[AppliedPolicy]) -> EffectiveValidation:
    request_modules: dict[str, str] = {}
    response_modules: dict[str, str] = {}
    request_schemas: list[dict[str, object]] = []
    response_schemas: list[dict[str, object]] = []
    redaction: list[RedactionRule] = []
    on_failures: list[OnFailure] = []
    reasks: list[int] = []
    for policy in ordered:
        validation = policy.spec.validation
        if validation is None:
            continue
        if validation.request is not None:
            request_modules.update(_modules(policy, validation.request.policies))
            if validation.request.json_schema is not None:
                request_schemas.append(validation.request.json_schema)
        response = validation.response
        if response is not None:
            response_modules.update(_modules(policy, response.policies))
            if response.json_schema is not None:
                response_schemas.append(response.json_schema)
            for rule in response.redaction or []:
                redaction.append(rule.model_copy(update={"name": f"{policy.key.slug}.{rule.name}"}))
            on_failures.append(response.on_failure)
            if response.on_failure is OnFailure.REASK and response.max_reasks is not None:
                reasks.append(response.max_reasks)
    return EffectiveValidation(
        request_modules=request_modules,
        response_modules=response_modules,
        request_schemas=tuple(request_schemas),
        response_schemas=tuple(response_schemas),
        redaction=tuple(redaction),
        on_failure=_strictest(on_failures, ON_FAILURE_ORDER) if on_failures else None,
        max_reasks=min(reasks) if reasks else None,
    )
