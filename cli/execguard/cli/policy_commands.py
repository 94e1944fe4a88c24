"""`execguard policy ...`: test and evaluate Rego policies locally."""

from __future__ import annotations

import typer

app = typer.Typer(help="Test and evaluate execguard policies locally.", no_args_is_help=True)


@app.command("test")
def test() -> None:
    """Run policies against recorded fixtures (not built yet)."""
    typer.echo("execguard policy test is not built yet", err=True)
    raise typer.Exit(code=2)
