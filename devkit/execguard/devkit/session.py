"""A local cluster session for humans: control plane plus node simulator,
with a state file so `execguard dev cluster down` can find and stop it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from execguard.devkit.catalog import default_images
from execguard.devkit.controlplane import ControlPlane, start_control_plane
from execguard.devkit.nodesim import NodeSimulator


def state_dir() -> Path:
    """Where the running dev cluster records itself."""
    root = os.environ.get("EXECGUARD_CACHE_DIR") or str(Path.home() / ".cache" / "execguard")
    return Path(root) / "dev-cluster"


@dataclass(frozen=True)
class SessionState:
    """What `up` records and `down`/`status` read."""

    pid: int
    kubeconfig: str
    server: str
    data_dir: str

    @classmethod
    def load(cls) -> SessionState | None:
        """The recorded session, if one is running."""
        path = state_dir() / "state.json"
        if not path.exists():
            return None
        state = cls(**json.loads(path.read_text()))
        try:
            os.kill(state.pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
            return None
        return state

    def save(self) -> None:
        """Record this session."""
        state_dir().mkdir(parents=True, exist_ok=True)
        (state_dir() / "state.json").write_text(json.dumps(self.__dict__))

    @staticmethod
    def clear() -> None:
        """Forget the recorded session."""
        (state_dir() / "state.json").unlink(missing_ok=True)


@contextlib.contextmanager
def local_cluster(data_dir: Path | None = None) -> Iterator[tuple[ControlPlane, NodeSimulator]]:
    """A control plane and node simulator, torn down on exit however it happens."""
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="execguard-dev-"))
            )
        cp = start_control_plane(data_dir / "control-plane")
        stack.callback(cp.stop)
        simulator = NodeSimulator(cp.api_client(), default_images(), data_dir / "node")
        simulator.start()
        stack.callback(simulator.stop)
        yield cp, simulator


def stop_recorded_session() -> SessionState | None:
    """SIGTERM the recorded `up` process; returns what was stopped."""
    state = SessionState.load()
    if state is not None:
        os.kill(state.pid, signal.SIGTERM)
    return state
