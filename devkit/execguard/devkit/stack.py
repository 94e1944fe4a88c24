"""execguard itself on the local control plane: CRDs, the operator and the
admission webhook as real processes, the way e2e tests and the demo run them.

The webhook is registered by URL on a loopback port (its serving certificate
names 127.0.0.1), so no Service virtual IP is needed.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from execguard.devkit.binaries import REPO_ROOT
from execguard.devkit.catalog import EXECGUARD_IMAGE
from execguard.devkit.controlplane import ControlPlane
from execguard.devkit.controlplane.processes import spawn, stop
from execguard.devkit.waiting import wait_for

CRD_DIR: Final = REPO_ROOT / "crds"
SYSTEM_NAMESPACE: Final = "execguard-system"
WEBHOOK_CONFIGURATIONS: Final = (
    ("mutatingwebhookconfiguration", "execguard-sidecar-injector"),
    ("validatingwebhookconfiguration", "execguard-sidecar-check"),
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


@dataclass
class ExecguardProcess:
    """An `execguard` subcommand running as a child process, output in `log`."""

    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""
        stop(self.process, grace_seconds=20.0)


def _execguard(args: list[str], log: Path, env: dict[str, str] | None = None) -> ExecguardProcess:
    return ExecguardProcess(
        process=spawn(
            [sys.executable, "-m", "execguard.cli.main", *args],
            log,
            env={**os.environ, **(env or {})},
        ),
        log=log,
    )


def start_operator(
    cluster: ControlPlane, log: Path, lease: str = "execguard-operator"
) -> ExecguardProcess:
    """`execguard operator` against the cluster, holding its own Lease."""
    return _execguard(
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


@dataclass
class WebhookProcess(ExecguardProcess):
    """`execguard webhook serve` on a loopback HTTPS port."""

    port: int = 0

    def get(self, path: str) -> int:
        """Status of a GET over HTTPS (readiness only, so the certificate is not checked)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(
                f"https://127.0.0.1:{self.port}{path}", context=context, timeout=5
            ) as response:
                return int(response.status)
        except OSError:
            return 0


def start_webhook(
    cluster: ControlPlane,
    log: Path,
    *,
    sidecar_image: str = EXECGUARD_IMAGE,
    failure_policy: str = "Fail",
    lease: str = "execguard-webhook",
) -> WebhookProcess:
    """Start the webhook, wait until it serves and its configurations are registered."""
    port = _free_port()
    base = _execguard(
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
            f"https://127.0.0.1:{port}",
            "--extra-san",
            "127.0.0.1",
            "--namespace",
            SYSTEM_NAMESPACE,
            "--identity",
            f"{lease}-0",
            "--sidecar-image",
            sidecar_image,
            "--failure-policy",
            failure_policy,
        ],
        log,
        {"EXECGUARD_WEBHOOK_LEASE_NAME": lease},
    )
    webhook = WebhookProcess(process=base.process, log=base.log, port=port)
    try:
        wait_for(f"the webhook on port {port}", lambda: webhook.get("/readyz") == 200, 60)
        kind, name = WEBHOOK_CONFIGURATIONS[0]
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
