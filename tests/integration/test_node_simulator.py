"""The node simulator runs pods the way kubelet would, as far as execguard cares:
native sidecars first, init containers to completion, env and volumes
materialised, readiness following probes, restarts per restartPolicy, and
ConfigMap changes reaching mounted files."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from execguard.devkit.catalog import PYTHON_IMAGE
from execguard.devkit.waiting import wait_for

pytestmark = pytest.mark.integration

SERVE = """
import http.server, os, sys
port = int(sys.argv[1])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer((os.environ["POD_IP"], port), H).serve_forever()
"""


def pod_ip_env() -> dict[str, Any]:
    return {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def apply(control_plane, namespace: str, *objects: dict[str, Any]) -> None:
    for obj in objects:
        control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def condition(pod: Any, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in (pod.status.conditions or []))


def test_sidecar_and_init_containers_run_first_and_env_and_volumes_are_there(
    control_plane, node_simulator, namespace, core
):
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings"},
        "data": {"mode": "strict", "config.json": '{"v": 1}'},
    }
    # Paths come in as arguments: the simulator maps mount paths in args and
    # env to the local volume directories (it cannot see inside program text).
    report = (
        """
import json, os, pathlib, sys, urllib.request
marker, config, labels = sys.argv[2:5]
sidecar = urllib.request.urlopen(f"http://{os.environ['POD_IP']}:9001/", timeout=5).read().decode()
print(json.dumps({
    "sidecar": sidecar,
    "marker": pathlib.Path(marker).read_text(),
    "mode": os.environ["MODE"],
    "config": pathlib.Path(config).read_text(),
    "labels": pathlib.Path(labels).read_text(),
    "name": os.environ["MY_NAME"],
}), flush=True)
"""
        + SERVE
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "ordered", "labels": {"app": "ordered"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "initContainers": [
                {
                    "name": "setup",
                    "image": PYTHON_IMAGE,
                    "args": [
                        "-c",
                        "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text('set')",
                        "/work/marker",
                    ],
                    "volumeMounts": [{"name": "work", "mountPath": "/work"}],
                },
                {
                    "name": "proxy",
                    "image": PYTHON_IMAGE,
                    "restartPolicy": "Always",
                    "args": ["-c", SERVE, "9001"],
                    "env": [pod_ip_env()],
                },
            ],
            "containers": [
                {
                    "name": "main",
                    "image": PYTHON_IMAGE,
                    "args": [
                        "-c",
                        report,
                        "9000",
                        "/work/marker",
                        "/etc/settings/config.json",
                        "/etc/podinfo/labels",
                    ],
                    "env": [
                        pod_ip_env(),
                        {
                            "name": "MY_NAME",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                        },
                        {
                            "name": "MODE",
                            "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}},
                        },
                    ],
                    "ports": [{"name": "http", "containerPort": 9000}],
                    "readinessProbe": {
                        "httpGet": {"path": "/", "port": "http"},
                        "periodSeconds": 1,
                    },
                    "volumeMounts": [
                        {"name": "work", "mountPath": "/work"},
                        {"name": "settings", "mountPath": "/etc/settings"},
                        {"name": "podinfo", "mountPath": "/etc/podinfo"},
                    ],
                }
            ],
            "volumes": [
                {"name": "work", "emptyDir": {}},
                {"name": "settings", "configMap": {"name": "settings"}},
                {
                    "name": "podinfo",
                    "downwardAPI": {
                        "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
                    },
                },
            ],
        },
    }
    apply(control_plane, namespace, pod)
    # The ConfigMap arrives after the pod: the pod waits for it, as on a real node.
    wait_for(
        "the pod to report the missing ConfigMap",
        lambda: "settings" in (core.read_namespaced_pod("ordered", namespace).status.message or ""),
        timeout=30,
    )
    apply(control_plane, namespace, config_map)
    running = wait_for(
        "the pod to be Ready",
        lambda: (
            (p := core.read_namespaced_pod("ordered", namespace)) and condition(p, "Ready") and p
        ),
        timeout=60,
    )
    statuses = {s.name: s for s in running.status.init_container_statuses}
    assert statuses["setup"].state.terminated.exit_code == 0
    assert statuses["proxy"].state.running is not None

    log = node_simulator.log_path(namespace, "ordered", "main")
    line = next(line for line in log.read_text().splitlines() if line.startswith("{"))
    seen = json.loads(line)
    assert seen == {
        "sidecar": "ok",
        "marker": "set",
        "mode": "strict",
        "config": '{"v": 1}',
        "labels": 'app="ordered"',
        "name": "ordered",
    }


def test_configmap_changes_reach_the_mounted_file(control_plane, node_simulator, namespace, core):
    def config_map(version: int) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "live"},
            "data": {"config.json": json.dumps({"version": version})},
        }

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reader"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": PYTHON_IMAGE,
                    "args": ["-c", "import time; time.sleep(3600)"],
                    "volumeMounts": [{"name": "live", "mountPath": "/etc/live"}],
                }
            ],
            "volumes": [{"name": "live", "configMap": {"name": "live"}}],
        },
    }
    apply(control_plane, namespace, config_map(1), pod)
    wait_for(
        "the pod to run",
        lambda: core.read_namespaced_pod("reader", namespace).status.phase == "Running",
    )
    runtime = node_simulator.runtime(namespace, "reader")
    mounted = runtime.directory / "volumes" / "live" / "config.json"
    assert json.loads(mounted.read_text()) == {"version": 1}
    apply(control_plane, namespace, config_map(2))
    wait_for(
        "the new ConfigMap content in the mounted file",
        lambda: json.loads(mounted.read_text()) == {"version": 2},
        timeout=15,
    )


def test_readiness_follows_the_probe_and_restart_policy_is_honoured(
    control_plane, node_simulator, namespace, core
):
    # Starts listening only once a file appears in its working directory.
    late_server = (
        "import pathlib, time\nwhile not pathlib.Path('go').exists(): time.sleep(0.1)\n" + SERVE
    )
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "late"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "main",
                        "image": PYTHON_IMAGE,
                        "args": ["-c", late_server, "9000"],
                        "env": [pod_ip_env()],
                        "readinessProbe": {"tcpSocket": {"port": 9000}, "periodSeconds": 1},
                    }
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "crashing"},
            "spec": {
                "restartPolicy": "Always",
                "containers": [
                    {"name": "main", "image": PYTHON_IMAGE, "args": ["-c", "raise SystemExit(3)"]}
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "job"},
            "spec": {
                "restartPolicy": "OnFailure",
                "containers": [
                    {"name": "main", "image": PYTHON_IMAGE, "args": ["-c", "print('done')"]}
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "unknown-image"},
            "spec": {"containers": [{"name": "main", "image": "registry.invalid/nothing:1"}]},
        },
    ]
    apply(control_plane, namespace, *pods)

    wait_for(
        "the late pod to be Running",
        lambda: core.read_namespaced_pod("late", namespace).status.phase == "Running",
    )
    time.sleep(2)  # several probe periods with nothing listening
    assert not condition(core.read_namespaced_pod("late", namespace), "Ready")
    runtime = node_simulator.runtime(namespace, "late")
    (runtime.directory / "go").write_text("")
    wait_for(
        "the late pod to be Ready",
        lambda: condition(core.read_namespaced_pod("late", namespace), "Ready"),
    )

    wait_for(
        "the crashing container to be restarted",
        lambda: (
            core.read_namespaced_pod("crashing", namespace)
            .status.container_statuses[0]
            .restart_count
            >= 2
        ),
    )
    wait_for(
        "the job pod to succeed",
        lambda: core.read_namespaced_pod("job", namespace).status.phase == "Succeeded",
    )
    waiting = wait_for(
        "the unknown image to be reported",
        lambda: (
            (s := core.read_namespaced_pod("unknown-image", namespace).status.container_statuses)
            and s[0].state.waiting
        ),
    )
    assert waiting.reason == "ErrImagePull"
    assert "registry.invalid/nothing:1" in waiting.message
