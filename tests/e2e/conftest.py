"""Fixtures for the end-to-end tests: operator + webhook + node simulator on the control plane."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from execguard.devkit.stack import (
    ExecguardProcess,
    Webhook,
    install_crds,
    remove_webhook_configurations,
    start_operator,
    start_webhook,
)


@pytest.fixture(scope="module")
def operator(
    control_plane: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExecguardProcess]:
    """The operator, running for the module."""
    install_crds(control_plane)
    process = start_operator(
        control_plane, tmp_path_factory.mktemp("operator") / "operator.log", "e2e-operator"
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def webhook(
    control_plane: Any, operator: ExecguardProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Webhook]:
    """One webhook replica (managing), registered, serving the node simulator's image."""
    process = start_webhook(
        control_plane, tmp_path_factory.mktemp("webhook") / "webhook.log", identity="e2e-webhook-0"
    )
    try:
        yield process
    finally:
        process.stop()
        remove_webhook_configurations(control_plane)


def log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
