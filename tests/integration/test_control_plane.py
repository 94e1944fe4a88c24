"""The local control plane behaves like a real cluster: controllers turn a
Deployment into running, addressable pods, and RBAC is enforced."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from execguard.devkit.catalog import SCRIPTED_MODEL_IMAGE
from execguard.devkit.controlplane.kubeconfig import write_token_kubeconfig
from execguard.devkit.waiting import wait_for

pytestmark = pytest.mark.integration


def model_deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "model",
                            "image": SCRIPTED_MODEL_IMAGE,
                            "args": ["--port", "8000", "--seed", "7"],
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


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone as far as serving goes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_deployment_becomes_two_ready_pods_that_answer_and_go_away_on_delete(
    control_plane, node_simulator, namespace
):
    core = client.CoreV1Api(control_plane.api_client())
    control_plane.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps(model_deployment("model", 2))
    )

    def ready_pods() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=model").items
        ready = [
            p
            for p in pods
            if any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
        ]
        return ready if len(ready) == 2 else []

    pods = wait_for("two Ready pods", ready_pods, timeout=90)
    # kube-controller-manager made them: they belong to a ReplicaSet of the Deployment.
    owners = {p.metadata.owner_references[0].kind for p in pods}
    assert owners == {"ReplicaSet"}
    addresses = sorted(p.status.pod_ip for p in pods)
    assert len(set(addresses)) == 2
    assert all(a.startswith("127.0.") and a != "127.0.0.1" for a in addresses)

    for address in addresses:
        request = urllib.request.Request(
            f"http://{address}:8000/v1/chat/completions",
            data=json.dumps(
                {"model": "scripted-small", "messages": [{"role": "user", "content": "hi"}]}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        assert answer["object"] == "chat.completion"
        assert answer["choices"][0]["message"]["content"]

    pids = []
    for pod in pods:
        runtime = node_simulator.runtime(namespace, pod.metadata.name)
        assert runtime is not None
        pids += [c.process.pid for c in runtime.containers.values() if c.process is not None]
    assert pids
    assert all(pid_alive(pid) for pid in pids)

    control_plane.kubectl("delete", "deployment", "model", "-n", namespace, "--wait=false")
    wait_for(
        "the pods to be deleted",
        lambda: not core.list_namespaced_pod(namespace, label_selector="app=model").items,
        timeout=60,
    )
    wait_for(
        "the pod processes to exit", lambda: not any(pid_alive(pid) for pid in pids), timeout=15
    )


def test_rbac_denies_a_service_account_until_a_role_binding_grants_it(
    control_plane, namespace, tmp_path
):
    control_plane.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    token = control_plane.kubectl(
        "create", "token", "reader", "-n", namespace, "--duration=10m"
    ).stdout.strip()
    reader_kubeconfig = write_token_kubeconfig(
        tmp_path / "reader.kubeconfig",
        server=control_plane.server,
        ca_cert=control_plane.pki.ca.cert,
        token=token,
        user="reader",
    )

    def list_pods_as_reader() -> subprocess.CompletedProcess[str]:
        return control_plane.kubectl(
            "get", "pods", "-n", namespace, kubeconfig=reader_kubeconfig, check=False
        )

    denied = list_pods_as_reader()
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert f"system:serviceaccount:{namespace}:reader" in denied.stderr

    control_plane.kubectl(
        "create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace
    )
    control_plane.kubectl(
        "create",
        "rolebinding",
        "reader-can-read",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:reader",
        "-n",
        namespace,
    )
    # The RBAC authorizer learns of new bindings through its informer.
    allowed = wait_for(
        "the RoleBinding to take effect",
        lambda: (r := list_pods_as_reader()).returncode == 0 and r,
        timeout=30,
    )
    assert "Forbidden" not in allowed.stderr
