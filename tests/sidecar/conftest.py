"""Process-level fixtures: the sidecar and the scripted model server as real processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sidecar_processes import ModelServer, Sidecar, start_model_server, start_sidecar, stop


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """A well-behaved model server that sometimes answers with PII."""
    server = start_model_server("--seed", "7", "--pii-rate", "0.5")
    yield server
    stop(server.process)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Sidecar]]:
    """Start sidecars (and stop them all at the end)."""
    started: list[Sidecar] = []

    def make(config: dict[str, Any], env: dict[str, str] | None = None) -> Sidecar:
        sidecar = start_sidecar(config, tmp_path, env=env)
        started.append(sidecar)
        return sidecar

    yield make
    for sidecar in started:
        stop(sidecar.process)


@pytest.fixture
def models() -> Iterator[Callable[..., ModelServer]]:
    """Start model servers with custom flags (stopped at the end)."""
    started: list[ModelServer] = []

    def make(*args: str) -> ModelServer:
        server = start_model_server(*args)
        started.append(server)
        return server

    yield make
    for server in started:
        stop(server.process)
