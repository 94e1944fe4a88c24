"""Fixtures for the end-to-end tests: operator + webhook + node simulator on the control plane."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from execguard_processes import (
    Process,
    Webhook,
    free_port,
    install_crds,
    remove_webhook_configurations,
    start_operator,
)
from kubernetes import client

from execguard.devkit.catalog import EXECGUARD_IMAGE
from execguard.devkit.waiting import wait_for


@pytest.fixture
def namespace(control_plane: Any) -> Iterator[str]:
    """A fresh namespace, deleted after the test."""
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    control_plane.kubectl("create", "namespace", name)
    wait_for(
        "the default ServiceAccount",
        lambda: (
            control_plane.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0
        ),
    )
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def core(control_plane: Any) -> client.CoreV1Api:
    return client.CoreV1Api(control_plane.api_client())


@pytest.fixture(scope="module")
def operator(control_plane: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """The operator, running for the module."""
    install_crds(control_plane)
    process = start_operator(
        control_plane, tmp_path_factory.mktemp("operator") / "operator.log", "e2e-operator"
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def webhook(
    control_plane: Any, operator: Process, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Webhook]:
    """One webhook replica (managing), registered, serving the node simulator's image."""
    log = tmp_path_factory.mktemp("webhook") / "webhook.log"
    process = Webhook(
        control_plane,
        log,
        port=free_port(),
        identity="e2e-webhook-0",
        sidecar_image=EXECGUARD_IMAGE,
    )
    try:
        process.wait_ready()
        wait_for(
            "the webhook configuration",
            lambda: (
                control_plane.kubectl(
                    "get", "mutatingwebhookconfiguration", "execguard-sidecar-injector", check=False
                ).returncode
                == 0
            ),
        )
        yield process
    finally:
        process.stop()
        remove_webhook_configurations(control_plane)


def log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
