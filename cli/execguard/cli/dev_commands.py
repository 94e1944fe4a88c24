"""`execguard dev ...`: the local control plane and demo for contributors."""

from __future__ import annotations

import typer

app = typer.Typer(help="Local development cluster and demo.", no_args_is_help=True)
