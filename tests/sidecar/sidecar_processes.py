"""Starting the sidecar and the scripted model server as real processes on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MODEL_SERVER = REPO / "examples" / "model_server" / "scripted_model_server.py"

EMAIL_RULE = {
    "name": "email",
    "pattern": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "maxMatchChars": 64,
}
CARD_RULE = {"name": "card", "pattern": r"\b(?:\d[ -]?){13,16}\b", "maxMatchChars": 32}


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Block until something accepts on the port, failing if the process died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on {port} within {timeout}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not go."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class ModelServer:
    """A running scripted model server."""

    port: int
    process: subprocess.Popen[bytes]


@dataclass
class Sidecar:
    """A running sidecar process and its config file."""

    port: int
    admin_port: int
    config_path: Path
    config: dict[str, Any]
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def rewrite_config(self, update: Callable[[dict[str, Any]], None]) -> None:
        """Change the config file atomically, as a ConfigMap update does."""
        update(self.config)
        temporary = self.config_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.config))
        temporary.replace(self.config_path)

    def output(self) -> str:
        """Everything the process has written so far (JSON logs and audit records)."""
        return self.log_path.read_text()


def start_model_server(*args: str) -> ModelServer:
    """Start the scripted model server with the given flags."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(MODEL_SERVER), "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process)
    return ModelServer(port, process)


def base_config(upstream_port: int, **overrides: Any) -> dict[str, Any]:
    """A config for a sidecar on free loopback ports in front of `upstream_port`."""
    config: dict[str, Any] = {
        "generation": 1,
        "listen": {"host": "127.0.0.1", "port": free_port()},
        "admin": {"host": "127.0.0.1", "port": free_port()},
        "upstream": {"host": "127.0.0.1", "port": upstream_port},
        "audit": {"enabled": True},
    }
    config.update(overrides)
    return config


def start_sidecar(
    config: dict[str, Any], tmp_path: Path, *, env: dict[str, str] | None = None
) -> Sidecar:
    """Write the config and start `python -m execguard.sidecar` on it."""
    path = tmp_path / f"sidecar-{config['listen']['port']}.json"
    path.write_text(json.dumps(config))
    log_path = path.with_suffix(".log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "execguard.sidecar",
                "--config",
                str(path),
                "--reload-interval",
                "0.2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    sidecar = Sidecar(
        config["listen"]["port"], config["admin"]["port"], path, config, process, log_path
    )
    wait_for_port(sidecar.admin_port, process)
    return sidecar
