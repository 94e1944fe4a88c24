"""One container as a local process: start, supervise, probe, stop."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from execguard.devkit.controlplane.processes import spawn, stop

PROBE_TIMEOUT_SECONDS = 1.0


def now_rfc3339() -> str:
    """The current time as Kubernetes writes timestamps."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _port(value: Any, container: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    for port in container.ports or []:
        if port.name == value:
            return int(port.container_port)
    raise ValueError(f"probe port {value!r} is not a port of container {container.name!r}")


def run_probe(probe: Any, container: Any, pod_ip: str) -> bool:
    """One probe attempt. HTTP (2xx/3xx) and TCP are supported; exec is not."""
    timeout = min(float(probe.timeout_seconds or 1), PROBE_TIMEOUT_SECONDS)
    try:
        if probe.http_get is not None:
            get = probe.http_get
            scheme = (get.scheme or "HTTP").lower()
            url = f"{scheme}://{get.host or pod_ip}:{_port(get.port, container)}{get.path or '/'}"
            request = urllib.request.Request(url)
            for header in get.http_headers or []:
                request.add_header(header.name, header.value)
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return 200 <= int(response.status) < 400
        if probe.tcp_socket is not None:
            port = _port(probe.tcp_socket.port, container)
            with socket.create_connection((probe.tcp_socket.host or pod_ip, port), timeout=timeout):
                return True
    except (OSError, ValueError, urllib.error.URLError):
        return False
    # An exec probe would run a command inside the image; nothing here can.
    return False


@dataclass
class ProbeState:
    """Timing and consecutive results of one probe."""

    probe: Any
    started: float
    next_at: float = 0.0
    successes: int = 0
    failures: int = 0
    passing: bool = False

    def due(self, now: float) -> bool:
        """Whether the probe should run now."""
        delay = float(self.probe.initial_delay_seconds or 0)
        return now >= self.started + delay and now >= self.next_at

    def record(self, ok: bool, now: float) -> None:
        """Fold one result into the thresholds."""
        self.next_at = now + float(self.probe.period_seconds or 10)
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.probe.success_threshold or 1):
                self.passing = True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.failures >= int(self.probe.failure_threshold or 3):
                self.passing = False


@dataclass
class ContainerProcess:
    """A container's process and what kubelet would report about it."""

    spec: Any
    log_path: Path
    restart_count: int = 0
    process: subprocess.Popen[bytes] | None = None
    started_at: str | None = None
    exit_code: int | None = None
    finished_at: str | None = None
    readiness: ProbeState | None = None
    liveness: ProbeState | None = None
    waiting_reason: str | None = "ContainerCreating"
    waiting_message: str | None = None
    argv: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        """The process is alive."""
        return self.process is not None and self.process.poll() is None

    @property
    def ready(self) -> bool:
        """Running and its readiness probe (if any) passes."""
        if not self.running:
            return False
        return self.readiness.passing if self.readiness is not None else True

    def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        """Start (or restart) the process."""
        with self.log_path.open("ab") as log:
            log.write(f"--- {now_rfc3339()} start: {' '.join(argv)}\n".encode())
        process = spawn(argv, self.log_path, env=env, cwd=cwd)
        if self.started_at is not None:
            self.restart_count += 1
        self.process = process
        self.argv = list(argv)
        self.started_at = now_rfc3339()
        self.exit_code = None
        self.finished_at = None
        self.waiting_reason = None
        self.waiting_message = None
        start = time.monotonic()
        self.readiness = (
            ProbeState(self.spec.readiness_probe, start) if self.spec.readiness_probe else None
        )
        self.liveness = (
            ProbeState(self.spec.liveness_probe, start) if self.spec.liveness_probe else None
        )

    def poll(self) -> bool:
        """Notice an exit; True if the process has just been found exited."""
        if self.process is None or self.exit_code is not None:
            return False
        code = self.process.poll()
        if code is None:
            return False
        self.exit_code = code
        self.finished_at = now_rfc3339()
        return True

    def probe(self, pod_ip: str) -> bool:
        """Run due probes; True if liveness failed and the container must restart."""
        if not self.running:
            return False
        now = time.monotonic()
        for state in (self.readiness, self.liveness):
            if state is not None and state.due(now):
                state.record(run_probe(state.probe, self.spec, pod_ip), now)
        liveness = self.liveness
        return liveness is not None and liveness.failures >= int(
            liveness.probe.failure_threshold or 3
        )

    def stop(self, grace_seconds: float) -> None:
        """Stop the process (SIGTERM, then SIGKILL after the grace period)."""
        if self.process is not None:
            code = stop(self.process, grace_seconds)
            if self.exit_code is None:
                self.exit_code = code if code is not None else 137
                self.finished_at = now_rfc3339()

    def status(self, image: str) -> dict[str, Any]:
        """The containerStatuses entry."""
        state: dict[str, Any]
        if self.running:
            state = {"running": {"startedAt": self.started_at}}
        elif self.exit_code is not None:
            state = {
                "terminated": {
                    "exitCode": self.exit_code,
                    "startedAt": self.started_at,
                    "finishedAt": self.finished_at,
                    "reason": "Completed" if self.exit_code == 0 else "Error",
                }
            }
        else:
            waiting: dict[str, str] = {"reason": self.waiting_reason or "ContainerCreating"}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            state = {"waiting": waiting}
        return {
            "name": self.spec.name,
            "image": image,
            "imageID": image,
            "ready": self.ready,
            "started": self.running,
            "restartCount": self.restart_count,
            "state": state,
        }
