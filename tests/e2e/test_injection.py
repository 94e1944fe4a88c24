"""End to end: a policy and a Deployment of the model server; the pods come up with the
sidecar injected, traffic to the Service's target port on the pod address goes through
the sidecar, and a pod without the opt-in label is untouched."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from execguard.devkit.catalog import SCRIPTED_MODEL_IMAGE
from execguard.devkit.stack import apply
from execguard.devkit.waiting import wait_for

pytestmark = pytest.mark.e2e

DENY_FORBIDDEN_MODEL = """package execguard.request

import rego.v1

deny contains "model forbidden is not allowed" if {
  input.request.body.model == "forbidden"
}
"""


def policy(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "execguard.io/v1alpha1",
        "kind": "ExecutionPolicy",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": app}},
            "enforcementAction": "enforce",
            "upstream": {"port": "http", "protocol": "openai"},
            "validation": {
                "request": {"policies": [{"name": "models", "rego": DENY_FORBIDDEN_MODEL}]}
            },
        },
    }


def model_pod_template(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels},
        "spec": {
            "containers": [
                {
                    "name": "model",
                    "image": SCRIPTED_MODEL_IMAGE,
                    "ports": [{"name": "http", "containerPort": 8000}],
                    "env": [
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
                    ],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                }
            ]
        },
    }


def deployment(name: str, labels: dict[str, str], replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": labels["app"]}},
            "template": model_pod_template(labels),
        },
    }


def service(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": "http"}]},
    }


def ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def policy_ready(control_plane: Any, namespace: str, name: str) -> bool:
    result = control_plane.kubectl("get", "xp", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return False
    status = json.loads(result.stdout).get("status", {})
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def target_port_number(pod: Any, name: str) -> int | None:
    """A named targetPort resolved on a pod (Kubernetes' FindPort, sidecars included)."""
    sidecars = [c for c in pod.spec.init_containers or [] if c.restart_policy == "Always"]
    for container in [*pod.spec.containers, *sidecars]:
        for port in container.ports or []:
            if port.name == name:
                return int(port.container_port)
    return None


def diagnose(core: Any, node_simulator: Any, namespace: str, webhook: Any) -> str:
    """Pod statuses and container logs, for a failure message."""
    lines = []
    for pod in core.list_namespaced_pod(namespace).items:
        lines.append(f"pod {pod.metadata.name}: {pod.status.phase} {pod.status.conditions}")
        lines.append(f"  init: {[c.name for c in pod.spec.init_containers or []]}")
        for status in [
            *(pod.status.init_container_statuses or []),
            *(pod.status.container_statuses or []),
        ]:
            lines.append(f"  {status.name}: {status.state} restarts={status.restart_count}")
            log = node_simulator.log_path(namespace, pod.metadata.name, status.name)
            if log is not None and log.exists():
                lines.append("    " + log.read_text(errors="replace")[-3000:])
    lines.append("webhook log: " + webhook.log.read_text(errors="replace")[-3000:])
    return "\n".join(lines)


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def metric(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def test_deployment_pods_get_the_sidecar_and_traffic_goes_through_it(
    control_plane, node_simulator, webhook, namespace, core
):
    apply(control_plane, namespace, policy("chat", "chat"))
    wait_for("policy chat Ready", lambda: policy_ready(control_plane, namespace, "chat"), 60)
    apply(
        control_plane,
        namespace,
        service("chat", "chat"),
        deployment("chat", {"app": "chat", "execguard.io/inject": "enabled"}),
    )

    def ready_pods() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=chat").items
        return pods if len(pods) == 2 and all(ready(p) for p in pods) else []

    try:
        pods = wait_for("two ready chat pods", ready_pods, 120)
    except AssertionError as error:
        raise AssertionError(diagnose(core, node_simulator, namespace, webhook)) from error
    for pod in pods:
        init = {c.name: c for c in pod.spec.init_containers or []}
        assert "execguard-sidecar" in init, "the sidecar was injected"
        assert init["execguard-sidecar"].restart_policy == "Always"
        assert [p.name for p in pod.spec.containers[0].ports] == ["http-model"]
        assert pod.metadata.annotations["execguard.io/injected-by"].startswith("xp.chat@")

    # The Service's targetPort is the name "http"; resolve it on the pod exactly as the
    # endpoints controller does (containers, then native sidecars). The controller itself
    # cannot publish these endpoints here: loopback pod addresses are invalid in
    # EndpointSlices, so the node simulator's pods never appear in them.
    target = core.read_namespaced_service("chat", namespace).spec.ports[0].target_port
    assert target == "http"
    port = target_port_number(pods[0], target)
    assert port == 8443, "the Service's target port is the sidecar's"

    pod_ip = pods[0].status.pod_ip
    status, body = post(
        f"http://{pod_ip}:{port}/v1/chat/completions",
        {"model": "scripted", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert status == 200, body
    assert body["choices"]
    status, body = post(
        f"http://{pod_ip}:{port}/v1/chat/completions",
        {"model": "forbidden", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert status == 403, body
    with urllib.request.urlopen(f"http://{pod_ip}:9090/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert metric(metrics, "execguard_requests_total") >= 2


def test_pod_without_opt_in_label_is_untouched(
    control_plane, node_simulator, webhook, namespace, core
):
    apply(control_plane, namespace, policy("plain", "plain"))
    wait_for("policy plain Ready", lambda: policy_ready(control_plane, namespace, "plain"), 60)
    apply(control_plane, namespace, deployment("plain", {"app": "plain"}, replicas=1))

    def running() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=plain").items
        return pods if pods and all(ready(p) for p in pods) else []

    pod = wait_for("the plain pod", running, 120)[0]
    assert not pod.spec.init_containers
    assert [p.name for p in pod.spec.containers[0].ports] == ["http"]
    assert "execguard.io/injected-by" not in (pod.metadata.annotations or {})
