"""Pod + policies -> a minimal JSON Patch. Pure: no I/O, no clock, no globals.

The patch only adds what is missing and replaces only the model port's name, so
applying it to a pod and feeding the result back yields an empty patch (the
webhook may be re-invoked, and manifests re-applied, without double injection).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from execguard.operator.merging import AppliedPolicy
from execguard.operator.rendering.configmap import (
    CONFIG_KEY_ANNOTATION,
    CONFIGMAP_NAME,
    UPSTREAM_PORT_ANNOTATION,
)
from execguard.operator.webhook.injection import (
    InjectionSpec,
    opa_container,
    sidecar_container,
    volumes,
)
from execguard.operator.webhook.patches import PatchOperation, escape
from execguard.operator.webhook.reviews import Container, Pod, Volume
from execguard.operator.webhook.selection import (
    Decision,
    Deny,
    Inject,
    PortWiring,
    Skip,
    decide,
)

INJECTED_BY_ANNOTATION: Final = "execguard.io/injected-by"
POLICY_HASH_ANNOTATION: Final = "execguard.io/policy-hash"
SKIPPED_ANNOTATION: Final = "execguard.io/injection-skipped"


@dataclass(frozen=True)
class Mutation:
    """The decision and the patch that carries it out (empty when nothing changes)."""

    decision: Decision
    patch: list[PatchOperation]

    @property
    def warnings(self) -> list[str]:
        """What the pod's creator should be told (kubectl prints admission warnings)."""
        match self.decision:
            case Inject(warnings=warnings):
                return [f"execguard: {warning}" for warning in warnings]
            case Skip(reason=reason, explain=True):
                return [f"execguard: sidecar not injected: {reason}"]
            case _:
                return []


def _annotation_ops(pod: Pod, wanted: Mapping[str, str]) -> list[PatchOperation]:
    metadata = pod.get("metadata")
    if metadata is None:
        return [{"op": "add", "path": "/metadata", "value": {"annotations": dict(wanted)}}]
    current = metadata.get("annotations")
    if current is None:
        return [{"op": "add", "path": "/metadata/annotations", "value": dict(wanted)}]
    return [
        {"op": "add", "path": f"/metadata/annotations/{escape(key)}", "value": value}
        for key, value in wanted.items()
        if current.get(key) != value
    ]


def _append_ops(
    pod: Pod, field: str, items: Sequence[Container] | Sequence[Volume]
) -> list[PatchOperation]:
    spec = pod.get("spec", {})
    if not items:
        return []
    if field not in spec:
        return [{"op": "add", "path": f"/spec/{field}", "value": list(items)}]
    return [{"op": "add", "path": f"/spec/{field}/-", "value": item} for item in items]


def _probe_port_ops(pod: Pod, wiring: PortWiring) -> list[PatchOperation]:
    """The model's own probes name its port; they must follow the rename.

    The kubelet resolves a probe's named port among the container's own ports, so
    a probe on `http` would otherwise find nothing once `http` is the sidecar's.
    """
    container = pod.get("spec", {}).get("containers", [])[wiring.container_index]
    ops: list[PatchOperation] = []
    probes = {
        "readinessProbe": container.get("readinessProbe"),
        "livenessProbe": container.get("livenessProbe"),
        "startupProbe": container.get("startupProbe"),
    }
    for probe_name, probe in probes.items():
        if probe is None:
            continue
        http, tcp = probe.get("httpGet", {}), probe.get("tcpSocket", {})
        named = {"httpGet": http.get("port"), "tcpSocket": tcp.get("port")}
        for handler, port in named.items():
            if port == wiring.old_name:
                ops.append(
                    {
                        "op": "replace",
                        "path": f"/spec/containers/{wiring.container_index}/{probe_name}/"
                        f"{handler}/port",
                        "value": wiring.new_model_port_name,
                    }
                )
    return ops


def inject_patch(pod: Pod, decision: Inject, spec: InjectionSpec) -> list[PatchOperation]:
    """The patch that injects the sidecar as `decision` says."""
    patch: list[PatchOperation] = []
    if decision.rename is not None:
        wiring = decision.rename
        patch.append(
            {
                "op": "replace",
                "path": f"/spec/containers/{wiring.container_index}/ports/{wiring.port_index}/name",
                "value": wiring.new_model_port_name,
            }
        )
        patch += _probe_port_ops(pod, wiring)
    init: list[Container] = []
    if decision.opa:
        # Before the sidecar, so the engine is up when the sidecar loads its policy.
        init.append(opa_container(spec))
    init.append(
        sidecar_container(
            spec,
            config_key=decision.config_key,
            upstream_port=decision.upstream_port,
            port_name=decision.sidecar_port_name,
            opa=decision.opa,
        )
    )
    patch += _append_ops(pod, "initContainers", init)
    patch += _append_ops(pod, "volumes", volumes(CONFIGMAP_NAME))
    patch += _annotation_ops(
        pod,
        {
            INJECTED_BY_ANNOTATION: decision.injected_by,
            POLICY_HASH_ANNOTATION: decision.policy_hash(spec),
            CONFIG_KEY_ANNOTATION: decision.config_key,
            UPSTREAM_PORT_ANNOTATION: str(decision.upstream_port),
        },
    )
    return patch


def mutate(
    pod: Pod,
    namespace: str,
    namespace_labels: Mapping[str, str],
    policies: Sequence[AppliedPolicy],
    spec: InjectionSpec,
) -> Mutation:
    """Decide about `pod` and return the minimal patch carrying out the decision."""
    decision = decide(pod, namespace, namespace_labels, policies, spec)
    match decision:
        case Inject():
            return Mutation(decision, inject_patch(pod, decision, spec))
        case Skip(reason=reason, explain=True):
            return Mutation(decision, _annotation_ops(pod, {SKIPPED_ANNOTATION: reason}))
        case Skip() | Deny():
            return Mutation(decision, [])
