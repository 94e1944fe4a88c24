"""Session fixtures shared by integration and e2e tests: a real control plane
(etcd, kube-apiserver, kube-controller-manager from hack/build-binaries.sh)
and the node simulator that runs pods as local processes.

Both start lazily, only when a test asks for them, and stop at session end,
also after failures or Ctrl-C: pytest runs fixture finalizers on interrupt,
and every child process also carries a parent-death signal.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from execguard.devkit.catalog import default_images
from execguard.devkit.controlplane import ControlPlane, start_control_plane
from execguard.devkit.nodesim import NodeSimulator
from execguard.devkit.waiting import wait_for


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A running control plane; its admin kubeconfig is `control_plane.kubeconfig`."""
    cp = start_control_plane(tmp_path_factory.mktemp("control-plane"))
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def node_simulator(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeSimulator]:
    """The simulated node, running pods with the images in `default_images()`."""
    simulator = NodeSimulator(
        control_plane.api_client(), default_images(), tmp_path_factory.mktemp("node")
    )
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root directory."""
    return Path(__file__).resolve().parents[1]


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace, deleted (with its pods) after the test."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    control_plane.kubectl("create", "namespace", name)
    # Pods are refused until the serviceaccount controller creates `default`.
    wait_for(
        "the default ServiceAccount",
        lambda: (
            control_plane.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0
        ),
    )
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def core(control_plane: ControlPlane) -> client.CoreV1Api:
    """CoreV1Api as the cluster admin."""
    return client.CoreV1Api(control_plane.api_client())
