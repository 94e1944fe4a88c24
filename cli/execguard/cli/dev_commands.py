"""`execguard dev ...`: the local control plane and demo for contributors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Local development cluster and demo.", no_args_is_help=True)
cluster_app = typer.Typer(
    help="A real local control plane with a simulated node.", no_args_is_help=True
)
app.add_typer(cluster_app, name="cluster")


@app.command("demo")
def demo(
    hold: Annotated[
        bool, typer.Option(help="Keep the cluster up after the demo until Ctrl-C.")
    ] = False,
) -> None:
    """Run the local demo on an embedded control plane (built by hack/build-binaries.sh)."""
    from rich.console import Console

    from execguard.devkit.binaries import BinaryNotBuilt
    from execguard.devkit.controlplane import ControlPlaneError
    from execguard.devkit.demo import run_demo

    console = Console()
    try:
        raise typer.Exit(code=run_demo(console, hold=hold))
    except (BinaryNotBuilt, ControlPlaneError) as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(code=1) from exc


@cluster_app.command("up")
def cluster_up(
    background: Annotated[
        bool, typer.Option("--background", help="Start detached and return once ready.")
    ] = False,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep cluster data here instead of a temporary directory.")
    ] = None,
) -> None:
    """Start etcd, kube-apiserver, kube-controller-manager and the node simulator."""
    from execguard.devkit.binaries import BinaryNotBuilt
    from execguard.devkit.controlplane import ControlPlaneError
    from execguard.devkit.session import SessionState, local_cluster, state_dir

    running = SessionState.load()
    if running is not None:
        typer.echo(
            f"a dev cluster is already running (pid {running.pid}); KUBECONFIG={running.kubeconfig}"
        )
        raise typer.Exit(code=1)
    if background:
        log = state_dir() / "up.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "execguard.cli.main", "dev", "cluster", "up"]
        if data_dir is not None:
            argv += ["--data-dir", str(data_dir)]
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 180
        while (state := SessionState.load()) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                typer.echo(f"dev cluster failed to start; see {log}", err=True)
                raise typer.Exit(code=1)
            time.sleep(0.5)
        typer.echo(f"dev cluster running (pid {state.pid}); export KUBECONFIG={state.kubeconfig}")
        return

    stop = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        with local_cluster(data_dir) as (cp, _simulator):
            SessionState(
                pid=os.getpid(),
                kubeconfig=str(cp.kubeconfig),
                server=cp.server,
                data_dir=str(cp.data_dir),
            ).save()
            typer.echo(f"dev cluster ready at {cp.server}")
            typer.echo(f"export KUBECONFIG={cp.kubeconfig}")
            typer.echo("Ctrl-C to stop.")
            try:
                while not stop:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
    except (BinaryNotBuilt, ControlPlaneError) as exc:
        typer.echo(f"dev cluster failed to start: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    finally:
        SessionState.clear()
    typer.echo("dev cluster stopped")


@cluster_app.command("down")
def cluster_down() -> None:
    """Stop the dev cluster started with `execguard dev cluster up`."""
    from execguard.devkit.session import SessionState, stop_recorded_session

    state = stop_recorded_session()
    if state is None:
        typer.echo("no dev cluster is running")
        return
    deadline = time.monotonic() + 60
    while SessionState.load() is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    typer.echo(f"stopped dev cluster (pid {state.pid})")


@cluster_app.command("status")
def cluster_status() -> None:
    """Say whether a dev cluster is running and where its kubeconfig is."""
    from execguard.devkit.session import SessionState

    state = SessionState.load()
    if state is None:
        typer.echo("no dev cluster is running")
        raise typer.Exit(code=1)
    typer.echo(f"running (pid {state.pid}) at {state.server}; KUBECONFIG={state.kubeconfig}")
