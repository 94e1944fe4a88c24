"""Starting the operator process: clients, metrics, leader election, then kopf.

Exit status: 0 after a normal stop (SIGTERM/SIGINT), 1 when the Lease was lost
(the process exits so the replica restarts as a clean standby).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import suppress

import kopf
from kubernetes import client, config
from prometheus_client import start_http_server

from execguard.operator import main as handlers_module
from execguard.operator.ha import LeaderElector, LeaseConfig
from execguard.operator.handlers.context import OperatorContext
from execguard.operator.kubernetes_api import KubernetesApi
from execguard.operator.metrics import OperatorMetrics
from execguard.operator.settings import OperatorSettings
from execguard.operator.validation.rego import EmbeddedCompiler, OpaCheckCompiler, RegoCompiler

logger = logging.getLogger(__name__)


class LostLeadership(RuntimeError):
    """This replica stopped holding the Lease while acting."""


def _api_client(settings: OperatorSettings) -> client.ApiClient:
    if settings.kubeconfig is not None:
        api_client: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(settings.kubeconfig)
        )
        return api_client
    config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def connection_info(api_client: client.ApiClient) -> kopf.ConnectionInfo:
    """kopf's credentials from the same client configuration the handlers use.

    One source of credentials: whatever kubeconfig or in-cluster config built
    `api_client` is also what kopf's watches authenticate with.
    """
    configuration = api_client.configuration
    header = configuration.get_api_key_with_prefix(
        "BearerToken"
    ) or configuration.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (
        (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    )
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def build_context(settings: OperatorSettings, api_client: client.ApiClient) -> OperatorContext:
    """The handlers' shared context for these settings."""
    compilers: list[RegoCompiler] = [EmbeddedCompiler()]
    if settings.opa_path is not None:
        compilers.append(OpaCheckCompiler(settings.opa_path))
    return OperatorContext(
        api=KubernetesApi(api_client), compilers=compilers, metrics=OperatorMetrics()
    )


async def run_operator(settings: OperatorSettings, stop: threading.Event | None = None) -> None:
    """Run until stopped; raises `LostLeadership` if the Lease is lost."""
    assert handlers_module.FINALIZER  # importing `main` registers the kopf handlers
    api_client = _api_client(settings)
    context = build_context(settings, api_client)
    if settings.metrics_port:
        start_http_server(
            settings.metrics_port, settings.metrics_host, registry=context.metrics.registry
        )
    elector: LeaderElector | None = None
    if settings.leader_election:
        elector = LeaderElector(
            api_client,
            LeaseConfig(
                name=settings.lease_name,
                namespace=settings.lease_namespace,
                identity=settings.identity,
                duration_seconds=settings.lease_duration_seconds,
                renew_interval_seconds=settings.renew_interval_seconds,
                retry_interval_seconds=settings.retry_interval_seconds,
            ),
        )
        await elector.acquire()
    context.metrics.leader.set(1)
    kopf_stop = asyncio.Event()
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    operator = asyncio.create_task(
        kopf.operator(
            clusterwide=True,
            standalone=True,
            stop_flag=kopf_stop,
            memo=kopf.Memo(context=context, connection=connection_info(api_client)),
            liveness_endpoint=liveness,
        )
    )
    watchers: set[asyncio.Task[object]] = {operator}
    holding = asyncio.create_task(elector.hold()) if elector else None
    if holding:
        watchers.add(holding)
    external = asyncio.create_task(asyncio.to_thread(stop.wait)) if stop else None
    if external:
        watchers.add(external)
    try:
        done, _ = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
        if operator not in done:
            kopf_stop.set()
            await operator
        if holding is not None and holding in done:
            raise LostLeadership(f"lost the lease {settings.lease_name}")
    finally:
        context.metrics.leader.set(0)
        for task in (holding, external):
            if task is not None and not task.done():
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        if stop is not None:
            stop.set()
        if elector is not None:
            with suppress(Exception):
                await elector.release()
