"""execguard itself on the local control plane: CRDs, the operator and the
admission webhook as real processes, the way e2e tests and the demo run them.

The webhook is registered by URL on a loopback port (its serving certificate
names 127.0.0.1): the apiserver refuses loopback addresses as Service
endpoints, so a Service in front of simulated pods could not reach it.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from execguard.devkit.binaries import REPO_ROOT
from execguard.devkit.catalog import EXECGUARD_IMAGE
from execguard.devkit.controlplane import ControlPlane
from execguard.devkit.controlplane.cluster import free_port
from execguard.devkit.controlplane.processes import spawn, stop
from execguard.devkit.waiting import wait_for

CRD_DIR: Final = REPO_ROOT / "crds"
SYSTEM_NAMESPACE: Final = "execguard-system"
INJECTOR_CONFIGURATION: Final = ("mutatingwebhookconfiguration", "execguard-sidecar-injector")
WEBHOOK_CONFIGURATIONS: Final = (
    INJECTOR_CONFIGURATION,
    ("validatingwebhookconfiguration", "execguard-sidecar-check"),
)


def install_crds(cluster: ControlPlane) -> None:
    """Apply the CRDs, wait until they are served, and create execguard's namespace."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD_DIR))
    wait_for(
        "the execguard CRDs to be served",
        lambda: cluster.kubectl("get", "xp", "-A", check=False).returncode == 0,
    )
    if cluster.kubectl("get", "namespace", SYSTEM_NAMESPACE, check=False).returncode != 0:
        cluster.kubectl("create", "namespace", SYSTEM_NAMESPACE)


def apply(cluster: ControlPlane, namespace: str, *objects: Mapping[str, Any]) -> None:
    """`kubectl apply` each object into the namespace."""
    for obj in objects:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def apply_valid_policy(
    cluster: ControlPlane, namespace: str, name: str = "chat", **spec: Any
) -> None:
    """An ExecutionPolicy selecting app=model, its status marked valid as the operator would.

    For webhook tests and benchmarks that do not run the operator; `notes`
    become annotations, any other keyword a spec field.
    """
    body = {
        "apiVersion": "execguard.io/v1alpha1",
        "kind": "ExecutionPolicy",
        "metadata": {"name": name, "namespace": namespace, "annotations": spec.pop("notes", {})},
        "spec": {
            "selector": {"matchLabels": {"app": "model"}},
            "upstream": {"port": "http"},
            **spec,
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
    cluster.kubectl(
        "patch",
        "xp",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"observedGeneration": 1, "lastGoodGeneration": 1}}),
    )


class ExecguardProcess:
    """An `execguard` subcommand as a child process, its output in `log`."""

    def __init__(self, args: list[str], log: Path, env: Mapping[str, str] | None = None) -> None:
        self.log = log
        self.process = spawn(
            [sys.executable, "-m", "execguard.cli.main", *args],
            log,
            env={**os.environ, **(env or {})},
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""
        stop(self.process, grace_seconds=20.0)


def start_operator(
    cluster: ControlPlane, log: Path, lease: str = "execguard-operator"
) -> ExecguardProcess:
    """`execguard operator` against the cluster, holding a Lease of its own name."""
    return ExecguardProcess(
        [
            "operator",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--metrics-port",
            "0",
            "--health-port",
            "0",
            "--identity",
            f"{lease}-0",
            "--lease-namespace",
            SYSTEM_NAMESPACE,
        ],
        log,
        {"EXECGUARD_OPERATOR_LEASE_NAME": lease},
    )


class Webhook(ExecguardProcess):
    """`execguard webhook serve` on a loopback HTTPS port, registered by URL.

    `url_port` registers another port than the one served (a balancer in front
    of several replicas); `manage=False` makes a replica that only serves.
    """

    def __init__(
        self,
        cluster: ControlPlane,
        log: Path,
        *,
        port: int,
        identity: str,
        sidecar_image: str = EXECGUARD_IMAGE,
        failure_policy: str = "Fail",
        manage: bool = True,
        lease: str = "execguard-webhook",
        url_port: int | None = None,
        audit_interval: float = 60.0,
    ) -> None:
        self.port = port
        super().__init__(
            [
                "webhook",
                "serve",
                "--kubeconfig",
                str(cluster.kubeconfig),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--url",
                f"https://127.0.0.1:{url_port or port}",
                "--extra-san",
                "127.0.0.1",
                "--namespace",
                SYSTEM_NAMESPACE,
                "--identity",
                identity,
                "--sidecar-image",
                sidecar_image,
                "--failure-policy",
                failure_policy,
                "--audit-interval",
                str(audit_interval),
                "--manage" if manage else "--no-manage",
            ],
            log,
            {"EXECGUARD_WEBHOOK_LEASE_NAME": lease},
        )

    def get(self, path: str) -> tuple[int, str]:
        """GET over HTTPS without verification (readiness and metrics only); 0 if unreachable."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(
                f"https://127.0.0.1:{self.port}{path}", context=context, timeout=5
            ) as response:
                return int(response.status), response.read().decode()
        except OSError as error:
            return 0, str(error)

    def wait_ready(self) -> None:
        """Until /readyz answers 200."""
        wait_for(f"the webhook on port {self.port}", lambda: self.get("/readyz")[0] == 200, 60)


def start_webhook(
    cluster: ControlPlane,
    log: Path,
    *,
    failure_policy: str = "Fail",
    identity: str = "webhook-0",
    lease: str = "execguard-webhook",
) -> Webhook:
    """One managing webhook replica, serving and registered with the apiserver."""
    webhook = Webhook(
        cluster,
        log,
        port=free_port(),
        identity=identity,
        failure_policy=failure_policy,
        lease=lease,
    )
    try:
        webhook.wait_ready()
        kind, name = INJECTOR_CONFIGURATION
        wait_for(
            f"{kind} {name}",
            lambda: cluster.kubectl("get", kind, name, check=False).returncode == 0,
            60,
        )
    except BaseException:
        webhook.stop()
        raise
    return webhook


def remove_webhook_configurations(cluster: ControlPlane) -> None:
    """Take the webhooks out of the apiserver's path (before stopping the webhook)."""
    for kind, name in WEBHOOK_CONFIGURATIONS:
        cluster.kubectl("delete", kind, name, "--ignore-not-found", check=False)
