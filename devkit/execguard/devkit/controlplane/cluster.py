"""Start and stop etcd, kube-apiserver and kube-controller-manager on loopback."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from execguard.devkit.binaries import find_binary
from execguard.devkit.controlplane.kubeconfig import write_kubeconfig
from execguard.devkit.controlplane.pki import ClusterPki, generate_cluster_pki
from execguard.devkit.controlplane.processes import spawn, stop

# Controllers a workload needs to go from Deployment to running, addressable
# pods, plus the ones that make namespaces, ServiceAccounts and garbage
# collection behave as on a real cluster. No scheduler and no kubelet: the
# node simulator binds and runs pods.
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    # Aggregated ClusterRoles (admin/edit/view), PodDisruptionBudget status and
    # ResourceQuota usage, which the chart and injection tests rely on.
    "clusterrole-aggregation-controller",
    "disruption-controller",
    "resourcequota-controller",
)
SERVICE_CIDR = "10.96.0.0/24"
STARTUP_TIMEOUT_SECONDS = 120.0


class ControlPlaneError(RuntimeError):
    """The control plane failed to start; the message carries the log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class ControlPlane:
    """A running local control plane and how to reach it."""

    data_dir: Path
    bin_dir: Path
    server: str
    kubeconfig: Path
    pki: ClusterPki
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log_path(self, component: str) -> Path:
        """Where a component's stdout and stderr go."""
        return self.data_dir / "logs" / f"{component}.log"

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this control plane (as admin unless told otherwise)."""
        config = kubeconfig or self.kubeconfig
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(config), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, result.args, result.stdout, result.stderr
            )
        return result

    def api_client(self) -> Any:
        """A `kubernetes.client.ApiClient` authenticated as the cluster admin."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]

    def ssl_context(self) -> ssl.SSLContext:
        """TLS context trusting the cluster CA and presenting the admin certificate."""
        context = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        context.load_cert_chain(str(self.pki.admin.cert), str(self.pki.admin.key))
        return context

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        """GET an apiserver path as admin; returns status and body."""
        try:
            with urllib.request.urlopen(
                self.server + path, context=self.ssl_context(), timeout=timeout
            ) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def check_alive(self) -> None:
        """Raise ControlPlaneError naming any component that has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with code {process.returncode}; log tail:\n"
                    + _log_tail(self.log_path(name))
                )

    def stop(self) -> None:
        """Stop every component, newest first, leaving no process behind."""
        for name in reversed(list(self.processes)):
            stop(self.processes.pop(name), grace_seconds=10.0)


def _start_etcd(cp: ControlPlane) -> str:
    client_port, peer_port = free_port(), free_port()
    client_url = f"http://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    cp.processes["etcd"] = spawn(
        [
            str(cp.bin_dir / "etcd"),
            "--name=default",
            f"--data-dir={cp.data_dir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--listen-metrics-urls=",
            # Test data is thrown away; fsync only costs time.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        cp.log_path("etcd"),
    )
    return client_url


def _start_apiserver(cp: ControlPlane, etcd_url: str, port: int) -> None:
    pki = cp.pki
    cp.processes["kube-apiserver"] = spawn(
        [
            str(cp.bin_dir / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={cp.data_dir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.apiserver.cert}",
            f"--tls-private-key-file={pki.apiserver.key}",
            f"--client-ca-file={pki.ca.cert}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Admission webhooks and aggregated APIs are reached through their
            # Service's endpoints (pod addresses on loopback), not a ClusterIP,
            # because nothing here implements Service virtual IPs.
            "--enable-aggregator-routing=true",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        ],
        cp.log_path("kube-apiserver"),
    )


def _start_controller_manager(cp: ControlPlane) -> None:
    pki = cp.pki
    kubeconfig = write_kubeconfig(
        cp.data_dir / "controller-manager.kubeconfig",
        server=cp.server,
        ca_cert=pki.ca.cert,
        client_cert=pki.controller_manager.cert,
        client_key=pki.controller_manager.key,
        user="system:kube-controller-manager",
    )
    cp.processes["kube-controller-manager"] = spawn(
        [
            str(cp.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--controllers={','.join(CONTROLLERS)}",
            # Each controller acts as its own ServiceAccount, with the
            # bootstrap RBAC roles a real cluster gives it.
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca.cert}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            f"--cert-dir={cp.data_dir / 'controller-manager-certs'}",
            "--v=1",
        ],
        cp.log_path("kube-controller-manager"),
    )


def _wait(cp: ControlPlane, what: str, ready: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cp.check_alive()
        with contextlib.suppress(OSError):
            if ready():
                return
        time.sleep(0.25)
    logs = "\n".join(f"--- {name}\n{_log_tail(cp.log_path(name))}" for name in cp.processes)
    raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")


def start_control_plane(
    data_dir: Path, bin_dir: Path | None = None, timeout: float = STARTUP_TIMEOUT_SECONDS
) -> ControlPlane:
    """Start etcd, kube-apiserver and kube-controller-manager; return once usable.

    Usable means `/readyz` answers ok and the controller manager has created
    the `default` ServiceAccount, so pods can be created at once. On failure
    everything started so far is stopped before the error propagates.
    """
    if bin_dir is None:
        bin_dir = find_binary("kube-apiserver").parent
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl"):
        find_binary(name, bin_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    pki = generate_cluster_pki(data_dir / "pki")
    port = free_port()
    server = f"https://127.0.0.1:{port}"
    kubeconfig = write_kubeconfig(
        data_dir / "admin.kubeconfig",
        server=server,
        ca_cert=pki.ca.cert,
        client_cert=pki.admin.cert,
        client_key=pki.admin.key,
        user="execguard-admin",
    )
    cp = ControlPlane(
        data_dir=data_dir, bin_dir=bin_dir, server=server, kubeconfig=kubeconfig, pki=pki
    )
    try:
        etcd_url = _start_etcd(cp)
        _start_apiserver(cp, etcd_url, port)
        _wait(cp, "kube-apiserver /readyz", lambda: cp.get("/readyz")[0] == 200, timeout)
        _start_controller_manager(cp)
        _wait(
            cp,
            "the default ServiceAccount (kube-controller-manager)",
            lambda: cp.get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
            timeout,
        )
    except BaseException:
        cp.stop()
        raise
    return cp
