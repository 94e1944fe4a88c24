"""End to end: the operator down while pods are created. The webhook still injects (it
needs only the API); the injected sidecar waits for its config file, and the pod comes
up once the operator is back and writes it."""

from __future__ import annotations

from typing import Any

import pytest
from test_injection import deployment, diagnose, policy, policy_ready, ready

from execguard.devkit.stack import apply, start_operator
from execguard.devkit.waiting import wait_for

pytestmark = pytest.mark.e2e


def test_pods_created_while_the_operator_is_down_start_once_it_is_back(
    control_plane, node_simulator, operator, webhook, namespace, core, tmp_path
):
    apply(control_plane, namespace, policy("chat", "late"))
    wait_for("policy Ready", lambda: policy_ready(control_plane, namespace, "chat"), 60)
    operator.stop()
    apply(
        control_plane,
        namespace,
        deployment("late", {"app": "late", "execguard.io/inject": "enabled"}, replicas=1),
    )

    def injected_pod() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=late").items
        return [
            p
            for p in pods
            if any(c.name == "execguard-sidecar" for c in p.spec.init_containers or [])
        ]

    pod = wait_for("the injected pod", injected_pod, 60)[0]
    name = pod.metadata.name

    def waiting_for_config() -> bool:
        log = node_simulator.log_path(namespace, name, "execguard-sidecar")
        return log is not None and log.exists() and "waiting for" in log.read_text()

    wait_for("the sidecar waiting for its config file", waiting_for_config, 60)
    assert not ready(core.read_namespaced_pod(name, namespace))
    restarted = start_operator(control_plane, tmp_path / "operator.log", "e2e-operator")
    try:
        try:
            wait_for(
                "the pod ready",
                lambda: ready(core.read_namespaced_pod(name, namespace)),
                120,
            )
        except AssertionError as error:
            raise AssertionError(diagnose(core, node_simulator, namespace, webhook)) from error
        status = next(
            s
            for s in core.read_namespaced_pod(name, namespace).status.init_container_statuses
            if s.name == "execguard-sidecar"
        )
        assert status.restart_count == 0, "the sidecar waited instead of crash-looping"
    finally:
        restarted.stop()
