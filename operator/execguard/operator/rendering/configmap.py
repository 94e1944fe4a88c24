"""The per-namespace sidecar ConfigMap: which config each injected pod reads.

Layout of `execguard-sidecar-config` in every namespace with execguard pods:

* ``pod-<labels hash>.json`` — the `SidecarConfig` for the pods carrying that key
  in their ``execguard.io/config-key`` annotation. A pod gets its key once (from
  its labels at injection: `config_key_for`, which the webhook also uses to mount
  exactly that key as the sidecar's config file) and keeps it for life. The
  operator keeps the file's content current: the merge of every policy selecting
  the pod, or — once no policy selects it — a pass-through config, so an injected
  pod is never left without a file to read.
* ``policy.<xp|cxp>.<name>.json`` — each policy's last *valid* spec. When a newer
  generation is invalid, renders keep using this one, so the good config stays
  in effect across operator restarts (nothing that matters lives only in memory).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from pydantic import BaseModel, ConfigDict, ValidationError

from execguard.operator.api.base import LabelSelector
from execguard.operator.api.policy import ClusterExecutionPolicySpec, ExecutionPolicySpec
from execguard.operator.merging import AppliedPolicy, PolicyKey, Scope, merge
from execguard.operator.rendering.sidecar_config import (
    render_passthrough_config,
    render_sidecar_config,
)
from execguard.sidecar.config import SidecarConfig

CONFIGMAP_NAME: Final = "execguard-sidecar-config"
CONFIG_KEY_ANNOTATION: Final = "execguard.io/config-key"
UPSTREAM_PORT_ANNOTATION: Final = "execguard.io/upstream-port"
LABELS_HASH_ANNOTATION: Final = "execguard.io/labels-hash"
"""The pod labels the current assignment was computed from; a change means re-render."""
INJECT_LABEL: Final = "execguard.io/inject"
INJECT_ENABLED: Final = "enabled"
INJECT_DISABLED: Final = "disabled"
DEFAULT_UPSTREAM_PORT: Final = 8000


@dataclass(frozen=True)
class PodView:
    """What rendering needs to know about a pod."""

    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    container_ports: Mapping[str, int] = field(default_factory=dict)

    def opted_in(self, namespace_labels: Mapping[str, str]) -> bool:
        """Pod or namespace label execguard.io/inject=enabled, and no opt-out annotation."""
        if self.annotations.get(INJECT_LABEL) == INJECT_DISABLED:
            return False
        return INJECT_ENABLED in (self.labels.get(INJECT_LABEL), namespace_labels.get(INJECT_LABEL))


@dataclass(frozen=True)
class NamespacePlan:
    """The ConfigMap content and pod annotations a namespace should have."""

    data: dict[str, str]
    pod_annotations: dict[str, dict[str, str]]
    matched: dict[PolicyKey, int]
    problems: dict[PolicyKey, list[str]]

    def changed_pods(self, pods: Iterable[PodView]) -> dict[str, dict[str, str]]:
        """Annotations to patch: only pods whose annotations differ from the plan."""
        changes = {}
        for pod in pods:
            wanted = self.pod_annotations.get(pod.name)
            if wanted and any(pod.annotations.get(k) != v for k, v in wanted.items()):
                changes[pod.name] = wanted
        return changes


class StoredPolicy(BaseModel):
    """A policy's last valid spec as kept in the ConfigMap."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Scope
    name: str
    namespace: str | None
    generation: int
    spec: ExecutionPolicySpec | ClusterExecutionPolicySpec

    def applied(self) -> AppliedPolicy:
        """The stored spec as it takes part in a merge."""
        return applied_policy(self.scope, self.name, self.namespace, self.generation, self.spec)


def applied_policy(
    scope: Scope,
    name: str,
    namespace: str | None,
    generation: int,
    spec: ExecutionPolicySpec | ClusterExecutionPolicySpec,
) -> AppliedPolicy:
    """An `AppliedPolicy` from a parsed spec of either kind."""
    namespace_selector: LabelSelector | None = None
    if isinstance(spec, ClusterExecutionPolicySpec):
        namespace_selector = spec.namespace_selector
    return AppliedPolicy(
        key=PolicyKey.of(scope, name, namespace),
        generation=generation,
        spec=spec,
        selector=spec.selector,
        namespace_selector=namespace_selector,
    )


def stored_key(key: PolicyKey) -> str:
    """The ConfigMap key holding a policy's last valid spec."""
    return f"policy.{key.slug}.json"


def store_policy(policy: AppliedPolicy) -> str:
    """Serialise a valid policy for the ConfigMap."""
    stored = StoredPolicy(
        scope=policy.key.scope,
        name=policy.key.name,
        namespace=policy.key.namespace,
        generation=policy.generation,
        spec=policy.spec,
    )
    return stored.model_dump_json(by_alias=True, exclude_none=True)


def stored_policies(data: Mapping[str, str]) -> dict[PolicyKey, AppliedPolicy]:
    """The last valid specs kept in a ConfigMap's data; unreadable entries are skipped."""
    result = {}
    for name, text in data.items():
        if not (name.startswith("policy.") and name.endswith(".json")):
            continue
        try:
            stored = StoredPolicy.model_validate_json(text)
        except ValidationError:
            continue
        policy = stored.applied()
        result[policy.key] = policy
    return result


def config_key_for(labels: Mapping[str, str]) -> str:
    """The file a newly injected pod with these labels reads (the webhook uses the same).

    Pods with identical labels share a file. The key is recorded on the pod
    (`execguard.io/config-key`) and never changes afterwards.
    """
    return f"pod-{labels_hash(labels)}.json"


def _next_generation(previous: Mapping[str, str], key: str, config: SidecarConfig) -> int:
    """Keep a file's generation when its content is unchanged; bump it otherwise."""
    text = previous.get(key)
    if text is None:
        return 1
    try:
        old = SidecarConfig.model_validate_json(text)
    except ValidationError:
        return 1
    if old.model_copy(update={"generation": 0}) == config.model_copy(update={"generation": 0}):
        return old.generation
    return old.generation + 1


def _resolve_port(
    port: int | str | None, pod: PodView, previous_port: int | None
) -> tuple[int, str | None]:
    if port is None:
        return previous_port or DEFAULT_UPSTREAM_PORT, None
    if isinstance(port, int):
        return port, None
    if port in pod.container_ports:
        return pod.container_ports[port], None
    fallback = previous_port or DEFAULT_UPSTREAM_PORT
    return fallback, f"pod {pod.name} has no container port named {port!r}; using {fallback}"


def plan_namespace(
    namespace_labels: Mapping[str, str],
    policies: Sequence[AppliedPolicy],
    pods: Sequence[PodView],
    previous: Mapping[str, str],
) -> NamespacePlan:
    """The ConfigMap data and pod annotations for one namespace.

    `policies` are the namespace's policies in their last valid generation
    (cluster policies whose namespace selector does not match are ignored here);
    `previous` is the current ConfigMap data.
    """
    applicable = [
        policy
        for policy in policies
        if policy.namespace_selector is None or policy.namespace_selector.matches(namespace_labels)
    ]
    data: dict[str, str] = {}
    annotations: dict[str, dict[str, str]] = {}
    matched: dict[PolicyKey, int] = {policy.key: 0 for policy in applicable}
    problems: dict[PolicyKey, list[str]] = {}
    for policy in applicable:
        data[stored_key(policy.key)] = store_policy(policy)
    # Group pods by the file they read. The key is fixed once a pod has it (the
    # webhook mounts that key), so a pod's file never disappears: when no policy
    # selects it any more, the same key carries a pass-through config.
    groups: dict[str, list[tuple[PodView, list[AppliedPolicy]]]] = {}
    for pod in sorted(pods, key=lambda pod: pod.name):
        if not pod.opted_in(namespace_labels):
            continue
        selecting = [
            policy for policy in applicable if policy.selects(namespace_labels, pod.labels)
        ]
        if not selecting and CONFIG_KEY_ANNOTATION not in pod.annotations:
            # Never configured by us: nothing to keep working, only note the labels
            # so that pod events do not ask for another render until they change.
            annotations[pod.name] = {LABELS_HASH_ANNOTATION: labels_hash(pod.labels)}
            continue
        key = pod.annotations.get(CONFIG_KEY_ANNOTATION) or config_key_for(pod.labels)
        groups.setdefault(key, []).append((pod, selecting))
    for key, members in groups.items():
        first, selecting = members[0]
        previous_port = _int_or_none(first.annotations.get(UPSTREAM_PORT_ANNOTATION))
        if selecting:
            merged = merge(selecting)
            port, problem = _resolve_port(merged.upstream.port, first, previous_port)
            config = render_sidecar_config(merged, port=port, generation=0)
            notes = [*([problem] if problem else []), *merged.conflicts]
            for pod, others in members[1:]:
                if {p.key for p in others} != {p.key for p in selecting}:
                    notes.append(
                        f"pods {first.name} and {pod.name} share {key} but are now selected "
                        f"by different policies; {pod.name} follows {first.name} until recreated"
                    )
            for source in merged.sources:
                for note in notes:
                    if note not in problems.setdefault(source.key, []):
                        problems[source.key].append(note)
        else:
            port = previous_port or DEFAULT_UPSTREAM_PORT
            config = render_passthrough_config(port=port, generation=0)
        config = config.model_copy(update={"generation": _next_generation(previous, key, config)})
        data[key] = config.model_dump_json(by_alias=True)
        for pod, pod_selecting in members:
            for policy in pod_selecting:
                matched[policy.key] += 1
            annotations[pod.name] = {
                CONFIG_KEY_ANNOTATION: key,
                UPSTREAM_PORT_ANNOTATION: str(port),
                LABELS_HASH_ANNOTATION: labels_hash(pod.labels),
            }
    return NamespacePlan(data=data, pod_annotations=annotations, matched=matched, problems=problems)


def labels_hash(labels: Mapping[str, str]) -> str:
    """A short digest of a pod's labels."""
    text = "\n".join(f"{key}={value}" for key, value in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def needs_render(pod: PodView, namespace_labels: Mapping[str, str]) -> bool:
    """Whether a pod event should trigger a render of its namespace."""
    if not pod.opted_in(namespace_labels):
        return CONFIG_KEY_ANNOTATION in pod.annotations and (
            pod.annotations.get(LABELS_HASH_ANNOTATION) != labels_hash(pod.labels)
        )
    return pod.annotations.get(LABELS_HASH_ANNOTATION) != labels_hash(pod.labels)


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None
