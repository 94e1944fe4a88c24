"""`python -m execguard.sidecar --config FILE`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from execguard.sidecar.observability.logs import configure_logging
from execguard.sidecar.server import StartupRefused, serve
from execguard.sidecar.settings import SidecarSettings


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the sidecar, and return the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m execguard.sidecar")
    parser.add_argument("--config", required=True, type=Path, help="sidecar config JSON file")
    parser.add_argument("--reload-interval", type=float, default=2.0, help="seconds")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    return run(
        SidecarSettings(
            config_path=args.config,
            reload_interval_seconds=args.reload_interval,
            log_level=args.log_level,
        )
    )


def run(settings: SidecarSettings) -> int:
    """Run until stopped; a refused start prints why and returns 2."""
    configure_logging(settings.log_level)
    try:
        asyncio.run(serve(settings))
    except StartupRefused as error:
        print(f"execguard sidecar: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
