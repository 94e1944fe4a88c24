"""Locates the control-plane and tool binaries built by hack/build-binaries.sh."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-binaries.sh"


class BinaryNotBuilt(RuntimeError):
    """A binary the caller needs has not been built yet."""


def binary_dir() -> Path:
    """The versioned cache directory holding the binaries.

    `EXECGUARD_BIN_DIR` wins when set; otherwise the build script computes the
    directory from the pinned versions, exactly as it does when building.
    """
    override = os.environ.get("EXECGUARD_BIN_DIR")
    if override:
        return Path(override)
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-dir"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(result.stdout.strip())


def find_binary(name: str, directory: Path | None = None) -> Path:
    """Path of an executable built by hack/build-binaries.sh, or a clear error."""
    path = (directory or binary_dir()) / name
    if not os.access(path, os.X_OK):
        raise BinaryNotBuilt(f"{name} is not built at {path}; run hack/build-binaries.sh first")
    return path
