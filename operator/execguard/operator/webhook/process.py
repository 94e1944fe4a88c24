"""Running `execguard webhook serve`: clients, the HTTPS server, and (optionally) management.

Serving starts once a certificate is available (from the Secret, or files);
until then nothing listens, so the apiserver's calls fail fast and the
configured failurePolicy applies.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import suppress

from aiohttp import web
from kubernetes import client, config

from execguard.operator.webhook.admission import Admission
from execguard.operator.webhook.cluster_view import ApiClusterView
from execguard.operator.webhook.events import ApiEventSink
from execguard.operator.webhook.management import manage
from execguard.operator.webhook.metrics import WebhookMetrics
from execguard.operator.webhook.server import BackgroundTasks, create_app
from execguard.operator.webhook.settings import WebhookSettings
from execguard.operator.webhook.tls_secret import ServingCertificate

logger = logging.getLogger(__name__)

CERTIFICATE_POLL_SECONDS = 10.0
SHUTDOWN_GRACE_SECONDS = 5.0


def api_client_for(settings: WebhookSettings) -> client.ApiClient:
    """An API client from the kubeconfig, or the in-cluster service account."""
    if settings.kubeconfig is not None:
        api_client: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(settings.kubeconfig)
        )
    else:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        api_client = client.ApiClient()
    # Admission waits on these calls: a few parallel requests per review.
    api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] = 32
    return api_client


async def run_webhook(settings: WebhookSettings, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or `stop`)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    api_client = await asyncio.to_thread(api_client_for, settings)
    metrics = WebhookMetrics()
    view = ApiClusterView(api_client)
    events = ApiEventSink(api_client, settings.identity)
    background = BackgroundTasks()
    admission = Admission(view, settings.injection(), metrics, events, background.spawn)
    certificate = ServingCertificate(metrics)
    tasks: list[asyncio.Task[None]] = []
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        follow = certificate.follow_files(
            settings.tls_cert_file, settings.tls_key_file, CERTIFICATE_POLL_SECONDS
        )
    else:
        follow = certificate.follow_secret(
            api_client, settings.namespace, settings.tls_secret, CERTIFICATE_POLL_SECONDS
        )
    tasks.append(asyncio.create_task(follow))
    if settings.manage:
        tasks.append(asyncio.create_task(manage(settings, api_client, view, metrics, events)))
    app = create_app(admission, metrics, lambda: certificate.loaded)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
    await runner.setup()
    try:
        while not certificate.loaded and not stop.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.2)
        if not stop.is_set():
            site = web.TCPSite(
                runner, settings.host, settings.port, ssl_context=certificate.context
            )
            await site.start()
            logger.info("execguard webhook serving on https://%s:%d", settings.host, settings.port)
            await stop.wait()
    finally:
        logger.info("stopping")
        await runner.cleanup()
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        await background.drain()
        await asyncio.to_thread(api_client.close)
