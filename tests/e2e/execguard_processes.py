"""The operator and the webhook as real subprocesses against the test control plane."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from execguard.devkit.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"
SYSTEM_NAMESPACE = "execguard-system"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def install_crds(cluster: Any) -> None:
    """Apply the CRDs, wait until served, and make sure execguard's namespace exists."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD_DIR))
    wait_for("CRDs served", lambda: cluster.kubectl("get", "xp", "-A", check=False).returncode == 0)
    if cluster.kubectl("get", "namespace", SYSTEM_NAMESPACE, check=False).returncode != 0:
        cluster.kubectl("create", "namespace", SYSTEM_NAMESPACE)


class Process:
    """A subprocess with its output in a log file, stopped with SIGTERM."""

    def __init__(self, command: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            command,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def start_operator(cluster: Any, log: Path, lease: str) -> Process:
    """`execguard operator` with its own Lease name (other tests run operators too)."""
    command = [
        sys.executable,
        "-m",
        "execguard.cli.main",
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
    ]
    return Process(command, log, {"EXECGUARD_OPERATOR_LEASE_NAME": lease})


class Webhook(Process):
    """`execguard webhook serve` on a loopback port, registered by URL."""

    def __init__(
        self,
        cluster: Any,
        log: Path,
        *,
        port: int,
        identity: str,
        sidecar_image: str,
        failure_policy: str = "Fail",
        manage: bool = True,
        lease: str = "execguard-webhook",
        url_port: int | None = None,
        audit_interval: float = 60.0,
    ) -> None:
        self.port = port
        command = [
            sys.executable,
            "-m",
            "execguard.cli.main",
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
        ]
        super().__init__(command, log, {"EXECGUARD_WEBHOOK_LEASE_NAME": lease})

    def get(self, path: str) -> tuple[int, str]:
        """GET over HTTPS without verification (readiness and metrics only)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(
                f"https://127.0.0.1:{self.port}{path}", context=context, timeout=5
            ) as response:
                return response.status, response.read().decode()
        except OSError as error:
            return 0, str(error)

    def wait_ready(self) -> None:
        wait_for(f"the webhook on port {self.port}", lambda: self.get("/readyz")[0] == 200, 60)


def remove_webhook_configurations(cluster: Any) -> None:
    """Take the webhook out of the apiserver's path (other tests share the control plane)."""
    for kind, name in (
        ("mutatingwebhookconfiguration", "execguard-sidecar-injector"),
        ("validatingwebhookconfiguration", "execguard-sidecar-check"),
    ):
        cluster.kubectl("delete", kind, name, "--ignore-not-found", check=False)


def apply(cluster: Any, namespace: str, *objects: dict[str, Any]) -> None:
    for obj in objects:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))
