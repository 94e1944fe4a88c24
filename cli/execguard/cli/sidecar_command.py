"""`execguard sidecar`: runs the validation sidecar in front of a model container."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def sidecar(
    config: Annotated[Path, typer.Option("--config", help="Path to the sidecar config JSON file.")],
    reload_interval: Annotated[
        float, typer.Option("--reload-interval", min=0.1, help="Seconds between config checks.")
    ] = 2.0,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning, error.")] = (
        "info"
    ),
) -> None:
    """Run the validation sidecar (reverse proxy) with the given config file."""
    # Imported here so other commands do not pay for aiohttp and the policy engine.
    from execguard.sidecar.__main__ import run
    from execguard.sidecar.settings import SidecarSettings

    code = run(
        SidecarSettings(
            config_path=config, reload_interval_seconds=reload_interval, log_level=log_level
        )
    )
    if code:
        raise typer.Exit(code=code)
