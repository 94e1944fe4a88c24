"""Fixtures for tests against the real control plane."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from execguard.devkit.controlplane import ControlPlane
from execguard.devkit.waiting import wait_for


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
