"""Session fixtures shared by integration and e2e tests: a real control plane
(etcd, kube-apiserver, kube-controller-manager from hack/build-binaries.sh)
and the node simulator that runs pods as local processes.

Both start lazily, only when a test asks for them, and stop at session end,
also after failures or Ctrl-C: pytest runs fixture finalizers on interrupt,
and every child process also carries a parent-death signal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from execguard.devkit.catalog import default_images
from execguard.devkit.controlplane import ControlPlane, start_control_plane
from execguard.devkit.nodesim import NodeSimulator


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
