"""`execguard webhook`: the sidecar-injecting admission webhook, and the injected entrypoint.

* `execguard webhook serve` — a stateless HTTPS server for /mutate and /validate;
  with `--manage` (default) it also takes part in the webhook Lease, and the
  holder issues the certificate, writes the webhook configurations and audits.
* `execguard webhook injected-sidecar` — what the injected container runs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Annotated

import typer

from execguard.cli.options import (
    IdentityOption,
    KubeconfigOption,
    VerboseOption,
    configure_logging,
)

app = typer.Typer(
    help="The admission webhook that injects the execguard sidecar.", no_args_is_help=True
)


@app.command("serve")
def serve(
    kubeconfig: KubeconfigOption = None,
    host: Annotated[str | None, typer.Option("--host", help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="HTTPS port.")] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="execguard's own namespace.")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Register this https URL instead of the Service."),
    ] = None,
    extra_san: Annotated[
        list[str] | None,
        typer.Option("--extra-san", help="Extra certificate name or IP (repeatable)."),
    ] = None,
    failure_policy: Annotated[
        str | None, typer.Option("--failure-policy", help="Fail or Ignore (injector).")
    ] = None,
    manage: Annotated[
        bool | None,
        typer.Option("--manage/--no-manage", help="Take part in the Lease for management."),
    ] = None,
    identity: IdentityOption = None,
    sidecar_image: Annotated[
        str | None, typer.Option("--sidecar-image", help="Image of the injected sidecar.")
    ] = None,
    audit_interval: Annotated[
        float | None, typer.Option("--audit-interval", help="Seconds between audits.")
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Serve the webhook; flags override EXECGUARD_WEBHOOK_* environment variables."""
    # Imported here so `execguard --help` works without the operator extra installed.
    from execguard.operator.webhook.process import run_webhook
    from execguard.operator.webhook.settings import SettingsError, load_settings

    configure_logging(verbose)
    try:
        settings = load_settings(
            kubeconfig=kubeconfig,
            host=host,
            port=port,
            namespace=namespace,
            url=url,
            extra_sans=tuple(extra_san) if extra_san else None,
            failure_policy=failure_policy,
            manage=manage,
            identity=identity,
            sidecar_image=sidecar_image,
            audit_interval_seconds=audit_interval,
        )
    except SettingsError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(code=2) from error
    asyncio.run(run_webhook(settings))


@app.command("injected-sidecar")
def injected_sidecar(
    config_dir: Annotated[Path, typer.Option("--config-dir", help="The mounted ConfigMap.")],
    config_key: Annotated[str, typer.Option("--config-key", help="This pod's file in it.")],
    podinfo_dir: Annotated[Path, typer.Option("--podinfo-dir", help="Downward API volume.")],
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Writable scratch directory.")],
    listen_port: Annotated[int, typer.Option("--listen-port", help="Proxy port.")],
    admin_port: Annotated[int, typer.Option("--admin-port", help="Admin port.")],
    pod_ip: Annotated[
        str | None, typer.Option("--pod-ip", help="The pod address (listen and upstream).")
    ] = None,
    upstream_port: Annotated[
        int | None,
        typer.Option("--upstream-port", help="The model's port (informational; see config)."),
    ] = None,
    opa_url: Annotated[str | None, typer.Option("--opa-url", help="The OPA server.")] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Wait for this pod's config, derive the pod-specific copy, and run the sidecar."""
    from execguard.operator.webhook.sidecar_launch import Deriver, LaunchSettings
    from execguard.sidecar.__main__ import run
    from execguard.sidecar.settings import SidecarSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    del upstream_port  # the rendered config carries the port the operator resolved
    deriver = Deriver(
        LaunchSettings(
            config_dir=config_dir,
            config_key=config_key,
            podinfo_dir=podinfo_dir,
            run_dir=run_dir,
            pod_ip=pod_ip if pod_ip and not pod_ip.startswith("$(") else None,
            listen_port=listen_port,
            admin_port=admin_port,
            opa_url=opa_url,
        )
    )
    deriver.wait_until_ready()
    stop = threading.Event()
    follower = threading.Thread(target=deriver.follow, args=(stop,), daemon=True)
    follower.start()
    try:
        code = run(SidecarSettings(config_path=deriver.target, log_level=log_level))
    finally:
        stop.set()
    if code:
        raise typer.Exit(code=code)
