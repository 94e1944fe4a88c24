"""The local demo: a real control plane, a model Deployment, live traffic.

What runs today: the control plane, the node simulator and the scripted model
server behind a Deployment. What does not exist yet is said plainly at the
end, so nobody mistakes the demo for enforcement that is not there.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import Any

from kubernetes import client
from rich.console import Console
from rich.table import Table

from execguard.devkit.catalog import SCRIPTED_MODEL_IMAGE
from execguard.devkit.session import local_cluster

NAMESPACE = "demo"
# What a PII guard policy would catch: e-mail addresses and card-like numbers.
PII = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\b(?:\d[ -]?){13,16}\b")
NOT_BUILT_YET = (
    "the ExecutionPolicy / ClusterExecutionPolicy / DriftBaseline CRDs and the operator",
    "the admission webhook that injects the execguard sidecar",
    "the validation sidecar (boundaries, Rego and JSON Schema checks, redaction)",
    "drift measurement and rollback / quarantine actions",
)


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "chat-model", "labels": {"app": "chat-model"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "chat-model"}},
            "template": {
                "metadata": {"labels": {"app": "chat-model"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "model",
                            "image": SCRIPTED_MODEL_IMAGE,
                            "args": ["--port", "8000", "--pii-rate", "0.6"],
                            # One seed per replica, so the two pods answer differently.
                            "env": [
                                {
                                    "name": "MODEL_SEED",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                }
                            ],
                            "ports": [{"name": "http", "containerPort": 8000}],
                            "readinessProbe": {
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "periodSeconds": 1,
                            },
                        }
                    ],
                },
            },
        },
    }


def _ready_pod_ips(core: Any) -> list[str]:
    pods = core.list_namespaced_pod(NAMESPACE, label_selector="app=chat-model").items
    return sorted(
        p.status.pod_ip
        for p in pods
        if any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
    )


def _ask(address: str, prompt: str) -> str:
    body = {"model": "scripted-small", "messages": [{"role": "user", "content": prompt}]}
    request = urllib.request.Request(
        f"http://{address}:8000/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    return str(answer["choices"][0]["message"]["content"])


def run_demo(console: Console, hold: bool = False) -> int:
    """Run the demo end to end; returns the process exit code."""
    console.rule("[bold]execguard local demo")
    console.print(
        "Starting etcd, kube-apiserver, kube-controller-manager and the node simulator ..."
    )
    started = time.monotonic()
    with local_cluster() as (cp, _simulator):
        console.print(f"Control plane ready at {cp.server} in {time.monotonic() - started:.1f}s")
        console.print(f"  kubeconfig: {cp.kubeconfig}")
        cp.kubectl("create", "namespace", NAMESPACE)
        deadline = time.monotonic() + 30
        while cp.kubectl("get", "sa", "default", "-n", NAMESPACE, check=False).returncode != 0:
            if time.monotonic() > deadline:
                console.print("[red]the default ServiceAccount never appeared")
                return 1
            time.sleep(0.25)
        cp.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(_deployment()))
        console.print(
            "Applied Deployment demo/chat-model (2 replicas of the scripted model server)"
        )
        core = client.CoreV1Api(cp.api_client())
        deadline = time.monotonic() + 60
        while len(addresses := _ready_pod_ips(core)) < 2:
            if time.monotonic() > deadline:
                console.print("[red]pods did not become Ready in 60s")
                console.print(cp.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide").stdout)
                return 1
            time.sleep(0.25)
        console.print(cp.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide").stdout)

        table = Table(title="Traffic straight to the model (no execguard in the path yet)")
        table.add_column("pod address")
        table.add_column("answer")
        leaked = 0
        for i in range(6):
            address = addresses[i % len(addresses)]
            answer = _ask(address, f"question {i}")
            leaked += bool(PII.search(answer))
            table.add_row(address, PII.sub(lambda m: f"[bold red]{m.group(0)}[/bold red]", answer))
        console.print(table)
        console.print(
            f"[yellow]{leaked} of 6 answers carry an e-mail address or card number (in red): "
            "nothing stops them yet.[/yellow]"
        )
        console.print("[bold]Not built yet:[/bold]")
        for item in NOT_BUILT_YET:
            console.print(f"  - {item}")
        if hold:
            console.print(f"Cluster stays up; KUBECONFIG={cp.kubeconfig}. Ctrl-C to stop.")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    console.print("Stopped the control plane and every pod process.")
    return 0
