"""Process settings from the command line (read once, at the edge)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SidecarSettings:
    """How this sidecar process runs; policy and limits come from the config file."""

    config_path: Path
    """The mounted config document (JSON), re-read on change."""
    reload_interval_seconds: float = 2.0
    """How often the config file is checked for changes (ConfigMap updates are symlink swaps,
    which inotify-style watches miss, so polling the content is the robust choice)."""
    log_level: str = "info"
    allow_pure_python_parser: bool = False
    """Test-only escape hatch; the pure-Python HTTP parser has had request-smuggling CVEs."""
