"""A local OPA server (`opa run --server`) on loopback, for tests, benchmarks
and `execguard policy test --engine opa`.

The binary is the one hack/build-binaries.sh builds; the process cannot
outlive its parent (see `controlplane.processes`).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from execguard.devkit.binaries import find_binary
from execguard.devkit.controlplane.cluster import free_port
from execguard.devkit.controlplane.processes import spawn, stop


class OpaStartError(RuntimeError):
    """OPA did not become healthy; the message carries its log tail."""


@dataclass
class OpaProcess:
    """`with OpaProcess() as opa:` runs a server on 127.0.0.1:`opa.port`."""

    binary: Path | None = None
    bundle: Path | None = None
    start_timeout: float = 30.0
    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="opa-")) / "opa.log"
    )
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> OpaProcess:
        """Start the server and wait until `/health` answers 200."""
        binary = self.binary or find_binary("opa")
        self.port = self.port or free_port(self.host)
        argv = [
            str(binary),
            "run",
            "--server",
            "--addr",
            f"{self.host}:{self.port}",
            "--log-level",
            "error",
            "--disable-telemetry",
        ]
        if self.bundle is not None:
            argv += ["--bundle", str(self.bundle)]
        self._process = spawn(argv, self.log_path)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise OpaStartError(f"opa exited with {self._process.returncode}:\n{self._tail()}")
            if self._healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise OpaStartError(f"opa was not healthy within {self.start_timeout}s:\n{self._tail()}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _tail(self) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self._process is not None:
            stop(self._process)
            self._process = None

    def __enter__(self) -> OpaProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
