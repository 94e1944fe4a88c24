"""The containers and volumes the webhook adds to a pod, as plain values.

The sidecar is a *native* sidecar: an init container with `restartPolicy: Always`,
so the kubelet starts it before the model container and stops it after. It runs
with the restricted pod-security profile's settings (non-root, read-only root
filesystem, no capabilities, no privilege escalation, RuntimeDefault seccomp), so
injecting it never makes a pod fail a `restricted` namespace.

Its entrypoint is the `execguard` CLI (`execguard webhook injected-sidecar`): a
thin launcher that waits for the pod's config file to appear in the mounted
ConfigMap (the operator writes it right after the pod is created), puts in the
pod address and identity, and runs the sidecar. See `sidecar_launch.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from execguard.operator.webhook.reviews import (
    Container,
    ContainerPort,
    EnvVar,
    ResourceRequirements,
    SecurityContext,
    Volume,
    VolumeMount,
)

SIDECAR_CONTAINER: Final = "execguard-sidecar"
OPA_CONTAINER: Final = "execguard-opa"
CONFIG_VOLUME: Final = "execguard-config"
PODINFO_VOLUME: Final = "execguard-podinfo"
RUN_VOLUME: Final = "execguard-run"
CONFIG_MOUNT: Final = "/etc/execguard/config"
PODINFO_MOUNT: Final = "/etc/execguard/podinfo"
RUN_MOUNT: Final = "/var/run/execguard"
DEFAULT_PORT_NAME: Final = "execguard"
ADMIN_PORT_NAME: Final = "eg-admin"
NON_ROOT_UID: Final = 65532


@dataclass(frozen=True)
class ResourceSpec:
    """Requests and limits of one injected container."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def requirements(self) -> ResourceRequirements:
        """As a core/v1 ResourceRequirements."""
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


@dataclass(frozen=True)
class InjectionSpec:
    """What gets injected (from the webhook settings)."""

    sidecar_image: str
    opa_image: str
    sidecar_port: int
    admin_port: int
    opa_port: int
    sidecar_resources: ResourceSpec
    opa_resources: ResourceSpec
    excluded_namespaces: frozenset[str]


def _security_context() -> SecurityContext:
    return {
        "runAsNonRoot": True,
        "runAsUser": NON_ROOT_UID,
        "runAsGroup": NON_ROOT_UID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_ip_env() -> EnvVar:
    return {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def sidecar_container(
    spec: InjectionSpec, *, config_key: str, upstream_port: int, port_name: str, opa: bool
) -> Container:
    """The execguard sidecar as a native sidecar, serving under `port_name`."""
    ports: list[ContainerPort] = [
        {"name": port_name, "containerPort": spec.sidecar_port, "protocol": "TCP"},
        {"name": ADMIN_PORT_NAME, "containerPort": spec.admin_port, "protocol": "TCP"},
    ]
    args = [
        "webhook",
        "injected-sidecar",
        "--config-dir",
        CONFIG_MOUNT,
        "--config-key",
        config_key,
        "--podinfo-dir",
        PODINFO_MOUNT,
        "--run-dir",
        RUN_MOUNT,
        # The pod address: the sidecar listens there and reaches the model there.
        "--pod-ip",
        "$(POD_IP)",
        "--listen-port",
        str(spec.sidecar_port),
        "--admin-port",
        str(spec.admin_port),
        "--upstream-port",
        str(upstream_port),
    ]
    if opa:
        args += ["--opa-url", f"http://127.0.0.1:{spec.opa_port}"]
    mounts: list[VolumeMount] = [
        {"name": CONFIG_VOLUME, "mountPath": CONFIG_MOUNT, "readOnly": True},
        {"name": PODINFO_VOLUME, "mountPath": PODINFO_MOUNT, "readOnly": True},
        {"name": RUN_VOLUME, "mountPath": RUN_MOUNT},
    ]
    return {
        "name": SIDECAR_CONTAINER,
        "image": spec.sidecar_image,
        "args": args,
        "restartPolicy": "Always",
        "env": [_pod_ip_env()],
        "ports": ports,
        "resources": spec.sidecar_resources.requirements(),
        "volumeMounts": mounts,
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": ADMIN_PORT_NAME},
            "periodSeconds": 2,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": ADMIN_PORT_NAME},
            "periodSeconds": 10,
            "failureThreshold": 3,
            # The launcher may wait for the config file first; do not kill it for that.
            "initialDelaySeconds": 30,
        },
        "securityContext": _security_context(),
    }


def opa_container(spec: InjectionSpec) -> Container:
    """An OPA server on localhost only; the sidecar pushes the policy modules to it."""
    return {
        "name": OPA_CONTAINER,
        "image": spec.opa_image,
        "args": [
            "run",
            "--server",
            f"--addr=127.0.0.1:{spec.opa_port}",
            "--diagnostic-addr=127.0.0.1:0",
            "--log-level=error",
        ],
        "restartPolicy": "Always",
        "resources": spec.opa_resources.requirements(),
        "securityContext": _security_context(),
    }


def volumes(configmap_name: str) -> list[Volume]:
    """The rendered config, the pod's own identity (downward API), and scratch space."""
    return [
        # Not optional: the kubelet waits for the ConfigMap instead of starting a
        # sidecar with nothing to enforce.
        {"name": CONFIG_VOLUME, "configMap": {"name": configmap_name}},
        {
            "name": PODINFO_VOLUME,
            "downwardAPI": {
                "items": [
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                    {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                ]
            },
        },
        {"name": RUN_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
    ]
