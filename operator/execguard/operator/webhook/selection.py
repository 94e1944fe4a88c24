"""Whether a pod gets the sidecar, and if so with which config key, port and names.

A pod is injected when it opted in (pod or namespace label
`execguard.io/inject=enabled`), did not opt out (annotation
`execguard.io/inject=disabled`), and at least one policy in effect in its
namespace selects it. The config key and upstream port come from the operator's
own planning code (`plan_namespace`), so the file the sidecar is told to read is
exactly the one the operator writes.

Traffic wiring without iptables: the sidecar takes over the model container's
port *name*. A model port named `http` is renamed (`http-model`) and the sidecar's
port is called `http`, so a Service with `targetPort: http` reaches the sidecar
unchanged. Numeric targetPorts keep reaching the model directly; point them at
the sidecar's port instead (docs/injection.md).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from execguard.operator.api.policy import EnforcementAction, EngineKind
from execguard.operator.merging import AppliedPolicy, merge
from execguard.operator.rendering.configmap import (
    CONFIG_KEY_ANNOTATION,
    DEFAULT_UPSTREAM_PORT,
    INJECT_DISABLED,
    INJECT_LABEL,
    UPSTREAM_PORT_ANNOTATION,
    PodView,
    plan_namespace,
)
from execguard.operator.webhook.injection import (
    ADMIN_PORT_NAME,
    CONFIG_VOLUME,
    DEFAULT_PORT_NAME,
    OPA_CONTAINER,
    PODINFO_VOLUME,
    RUN_VOLUME,
    SIDECAR_CONTAINER,
    InjectionSpec,
)
from execguard.operator.webhook.reviews import Container, Pod

ALLOW_OPT_OUT_LABEL: Final = "execguard.io/allow-opt-out"
"""Namespace label; `false` refuses pods that carry the opt-out annotation."""
MIRROR_ANNOTATION: Final = "kubernetes.io/config.mirror"
PORT_NAME_PATTERN: Final = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z]$")
RENAME_SUFFIXES: Final = ("-model", "-mdl", "-m")


@dataclass(frozen=True)
class PortWiring:
    """How traffic reaches the sidecar: which model port is renamed, and to what."""

    container_index: int
    port_index: int
    old_name: str
    new_model_port_name: str


@dataclass(frozen=True)
class Inject:
    """Inject the sidecar with these settings."""

    config_key: str
    upstream_port: int
    sidecar_port_name: str
    rename: PortWiring | None
    opa: bool
    enforcement: EnforcementAction
    policies: tuple[AppliedPolicy, ...]
    warnings: tuple[str, ...] = ()

    @property
    def injected_by(self) -> str:
        """The policies and generations this injection came from, e.g. `xp.chat@3`."""
        return ",".join(f"{p.key.slug}@{p.generation}" for p in self.policies)

    def policy_hash(self, spec: InjectionSpec) -> str:
        """A short digest of the policy generations and what was injected."""
        identity = "|".join(
            [self.injected_by, self.config_key, str(self.upstream_port), spec.sidecar_image]
            + ([spec.opa_image] if self.opa else [])
        )
        return hashlib.sha256(identity.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Skip:
    """Leave the pod as it is. `explain` records the reason on the pod and warns."""

    reason: str
    explain: bool = False


@dataclass(frozen=True)
class Deny:
    """Refuse the pod; the message is shown to whoever created it."""

    message: str


Decision = Inject | Skip | Deny


def has_sidecar(pod: Pod) -> bool:
    """Whether the pod already carries the execguard sidecar (as init or regular container)."""
    spec = pod.get("spec", {})
    names = {c.get("name") for c in [*spec.get("initContainers", []), *spec.get("containers", [])]}
    return SIDECAR_CONTAINER in names


def pod_view(pod: Pod, fallback_name: str = "<new pod>") -> PodView:
    """The pod as the operator's planning code sees it."""
    metadata = pod.get("metadata", {})
    ports = {
        port["name"]: int(port.get("containerPort", 0))
        for container in pod.get("spec", {}).get("containers", [])
        for port in container.get("ports", [])
        if port.get("name")
    }
    return PodView(
        name=metadata.get("name") or fallback_name,
        labels=dict(metadata.get("labels", {})),
        annotations=dict(metadata.get("annotations", {})),
        container_ports=ports,
    )


def selecting_policies(
    view: PodView, namespace_labels: Mapping[str, str], policies: Sequence[AppliedPolicy]
) -> list[AppliedPolicy]:
    """The policies in effect that select this pod, in merge order."""
    return sorted(
        (p for p in policies if p.selects(namespace_labels, view.labels)), key=lambda p: p.key
    )


def _port_names(pod: Pod) -> set[str]:
    spec = pod.get("spec", {})
    return {
        port["name"]
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]
        for port in container.get("ports", [])
        if port.get("name")
    }


def _port_numbers(pod: Pod) -> dict[int, str]:
    spec = pod.get("spec", {})
    return {
        int(port.get("containerPort", 0)): container.get("name", "")
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]
        for port in container.get("ports", [])
    }


def renamed_port(name: str, taken: set[str]) -> str | None:
    """A free, valid port name for the model's port once the sidecar takes `name`."""
    for suffix in RENAME_SUFFIXES:
        candidate = name[: 15 - len(suffix)].rstrip("-") + suffix
        if candidate not in taken and PORT_NAME_PATTERN.match(candidate):
            return candidate
    return None


def _find_port(
    containers: list[Container], port: int | str
) -> tuple[int, int, int, str | None] | None:
    """(container index, port index, number, name) of the model's serving port."""
    for ci, container in enumerate(containers):
        for pi, declared in enumerate(container.get("ports", [])):
            number = int(declared.get("containerPort", 0))
            name = declared.get("name")
            if (isinstance(port, str) and name == port) or (
                isinstance(port, int) and number == port
            ):
                return ci, pi, number, name
    return None


def decide(
    pod: Pod,
    namespace: str,
    namespace_labels: Mapping[str, str],
    policies: Sequence[AppliedPolicy],
    spec: InjectionSpec,
) -> Decision:
    """What to do with a pod being created. Pure: everything it needs is passed in."""
    metadata = pod.get("metadata", {})
    annotations = metadata.get("annotations", {})
    pod_spec = pod.get("spec", {})
    if namespace in spec.excluded_namespaces:
        return Skip(f"namespace {namespace} is excluded from injection")
    if MIRROR_ANNOTATION in annotations:
        return Skip("mirror (static) pods are managed by the kubelet and cannot be changed")
    if has_sidecar(pod):
        return Skip("the pod already has the execguard sidecar")
    view = pod_view(pod)
    opted_out = annotations.get(INJECT_LABEL) == INJECT_DISABLED
    if opted_out:
        forbidden = namespace_labels.get(ALLOW_OPT_OUT_LABEL) == "false"
        if forbidden and selecting_policies(
            PodView(view.name, view.labels, {}, view.container_ports), namespace_labels, policies
        ):
            return Deny(
                f"namespace {namespace} does not allow opting out of execguard "
                f"(label {ALLOW_OPT_OUT_LABEL}=false): remove the annotation "
                f"{INJECT_LABEL}={INJECT_DISABLED}"
            )
        return Skip(f"the pod opted out with the annotation {INJECT_LABEL}={INJECT_DISABLED}")
    if not view.opted_in(namespace_labels):
        return Skip(f"neither the pod nor its namespace has the label {INJECT_LABEL}=enabled")
    selecting = selecting_policies(view, namespace_labels, policies)
    if not selecting:
        return Skip("no policy in effect selects the pod")
    if pod_spec.get("hostNetwork"):
        return Skip(
            "hostNetwork pods share the node's ports; the sidecar could not take over the "
            "model's port without colliding with other pods",
            explain=True,
        )
    merged = merge(selecting)
    wanted: int | str = (
        merged.upstream.port if merged.upstream.port is not None else DEFAULT_UPSTREAM_PORT
    )
    containers = pod_spec.get("containers", [])
    found = _find_port(containers, wanted)
    warnings: list[str] = [*merged.conflicts]
    if found is None and isinstance(wanted, str):
        return Skip(f"no container has a port named {wanted!r} (the policies' upstream port)", True)
    numbers = _port_numbers(pod)
    for number, what in ((spec.sidecar_port, "proxy"), (spec.admin_port, "admin")):
        if number in numbers:
            return Skip(
                f"container {numbers[number]!r} already uses port {number}, the sidecar's "
                f"{what} port",
                True,
            )
    if merged.engine is EngineKind.OPA and spec.opa_port in numbers:
        return Skip(f"container {numbers[spec.opa_port]!r} already uses the OPA port", True)
    taken = _port_names(pod)
    rename: PortWiring | None = None
    if found is None:
        upstream = int(wanted)
        sidecar_name = DEFAULT_PORT_NAME
        warnings.append(
            f"no container declares port {upstream}; point Services at the sidecar port "
            f"{DEFAULT_PORT_NAME!r} ({spec.sidecar_port})"
        )
    else:
        ci, pi, upstream, name = found
        if name is None:
            sidecar_name = DEFAULT_PORT_NAME
            warnings.append(
                f"port {upstream} has no name; Services must target the sidecar port "
                f"{DEFAULT_PORT_NAME!r} ({spec.sidecar_port}) to go through the sidecar"
            )
        else:
            new_name = renamed_port(name, taken)
            if new_name is None:
                return Skip(f"no free name to rename the model's port {name!r} to", True)
            sidecar_name = name
            rename = PortWiring(ci, pi, name, new_name)
    if upstream == spec.sidecar_port:
        return Skip(f"the model's port {upstream} is the sidecar's own port", True)
    if sidecar_name == DEFAULT_PORT_NAME and DEFAULT_PORT_NAME in taken:
        return Skip(f"the port name {DEFAULT_PORT_NAME!r} is already taken", True)
    if ADMIN_PORT_NAME in taken:
        return Skip(f"the port name {ADMIN_PORT_NAME!r} is already taken", True)
    names = {v.get("name", "") for v in pod_spec.get("volumes", [])}
    clash = names & {CONFIG_VOLUME, PODINFO_VOLUME, RUN_VOLUME}
    if clash:
        return Skip(f"the pod already has a volume named {sorted(clash)[0]!r}", True)
    init_names = {c.get("name") for c in [*pod_spec.get("initContainers", []), *containers]}
    if OPA_CONTAINER in init_names:
        return Skip(f"the pod already has a container named {OPA_CONTAINER!r}", True)
    # The operator's planning code, with only this pod: the key it will write for it.
    plan = plan_namespace(namespace_labels, selecting, [view], {})
    planned = plan.pod_annotations.get(view.name, {})
    config_key = planned.get(CONFIG_KEY_ANNOTATION)
    if config_key is None or planned.get(UPSTREAM_PORT_ANNOTATION) != str(upstream):
        # Would be a bug: the plan resolves ports exactly as above.
        return Skip("the operator's plan disagrees about the upstream port", True)
    return Inject(
        config_key=config_key,
        upstream_port=upstream,
        sidecar_port_name=sidecar_name,
        rename=rename,
        opa=merged.engine is EngineKind.OPA,
        enforcement=merged.enforcement_action,
        policies=merged.sources,
        warnings=tuple(warnings),
    )
