"""Assembles the command groups into the `execguard` console script."""

from __future__ import annotations

import typer

from execguard.cli import (
    dev_commands,
    operator_command,
    policy_commands,
    sidecar_command,
    webhook_command,
)

app = typer.Typer(
    name="execguard",
    help="Execution policy, validation and drift enforcement for AI inference workloads.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(dev_commands.app, name="dev")
app.add_typer(policy_commands.app, name="policy")
app.command("sidecar")(sidecar_command.sidecar)
app.command("operator")(operator_command.operator)
app.add_typer(webhook_command.app, name="webhook")


if __name__ == "__main__":
    app()
