"""`execguard operator`: runs the operator (reconciles the execguard custom resources)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from execguard.cli.options import (
    IdentityOption,
    KubeconfigOption,
    VerboseOption,
    configure_logging,
)


def operator(
    kubeconfig: KubeconfigOption = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Port of /metrics (0 disables).")
    ] = None,
    health_port: Annotated[
        int | None, typer.Option("--health-port", help="Port of /healthz (0 disables).")
    ] = None,
    identity: IdentityOption = None,
    lease_namespace: Annotated[
        str | None, typer.Option("--lease-namespace", help="Namespace holding the Lease.")
    ] = None,
    leader_election: Annotated[
        bool | None,
        typer.Option(
            "--leader-election/--no-leader-election", help="Act only while holding the Lease."
        ),
    ] = None,
    opa: Annotated[
        Path | None, typer.Option("--opa", help="An opa binary for `opa check` of Rego modules.")
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Run the operator; flags override EXECGUARD_OPERATOR_* environment variables."""
    # Imported here so `execguard --help` works without the operator extra installed.
    from execguard.operator.runner import LostLeadership, run_operator
    from execguard.operator.settings import SettingsError, load_settings

    configure_logging(verbose)
    try:
        settings = load_settings(
            kubeconfig=kubeconfig,
            metrics_port=metrics_port,
            health_port=health_port,
            identity=identity,
            lease_namespace=lease_namespace,
            leader_election=leader_election,
            opa_path=opa,
        )
    except SettingsError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(code=2) from error
    try:
        asyncio.run(run_operator(settings))
    except LostLeadership as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(code=1) from error
