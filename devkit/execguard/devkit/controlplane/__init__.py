"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and
kube-controller-manager, started from the binaries hack/build-binaries.sh built.

Secure port only, RBAC and Node authorization on, admission webhooks on,
ServiceAccount tokens signed by a generated key. Used by integration and e2e
tests (as a session fixture) and by `execguard dev cluster up`.
"""

from execguard.devkit.controlplane.cluster import (
    ControlPlane,
    ControlPlaneError,
    start_control_plane,
)

__all__ = ["ControlPlane", "ControlPlaneError", "start_control_plane"]
