"""Options and logging shared by the long-running commands (`operator`, `webhook serve`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

KubeconfigOption = Annotated[
    Path | None,
    typer.Option("--kubeconfig", help="Kubeconfig to use; in-cluster config when omitted."),
]
IdentityOption = Annotated[
    str | None, typer.Option("--identity", help="This replica's name in the Lease.")
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]


def configure_logging(verbose: bool) -> None:
    """Timestamped logs on stderr, debug level with --verbose."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
