"""`execguard sidecar`: runs the validation sidecar in front of a model container."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def sidecar(
    config: Annotated[Path, typer.Option("--config", help="Path to the sidecar config JSON file.")],
) -> None:
    """Run the validation sidecar (reverse proxy) with the given config file."""
    typer.echo(f"execguard sidecar is not built yet (config: {config})", err=True)
    raise typer.Exit(code=2)
