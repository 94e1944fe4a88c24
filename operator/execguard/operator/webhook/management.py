"""The one-replica duties, under the webhook's own Lease.

All replicas serve admission requests; only the Lease holder issues and rotates
the certificate (unless cert-manager does), writes the two webhook
configurations with the current caBundle, and runs the audit. This is the
Kyverno/Gatekeeper split of admission and background controllers, with the
operator's own `LeaderElector` deciding who does the background part.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from datetime import timedelta

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from execguard.operator.ha import LeaderElector, LeaseConfig
from execguard.operator.webhook.admission import EventSink
from execguard.operator.webhook.audit import audit_forever
from execguard.operator.webhook.certificates import Lifetimes, service_names
from execguard.operator.webhook.cluster_view import ClusterView
from execguard.operator.webhook.configuration import (
    apply_configuration,
    render_mutating,
    render_validating,
)
from execguard.operator.webhook.metrics import WebhookMetrics
from execguard.operator.webhook.settings import WebhookSettings
from execguard.operator.webhook.tls_secret import ensure_secret, read_bundle

logger = logging.getLogger(__name__)

RECONCILE_INTERVAL_SECONDS = 30.0


def lifetimes(settings: WebhookSettings) -> Lifetimes:
    """Certificate lifetimes from settings."""
    return Lifetimes(
        ca=timedelta(days=settings.ca_validity_days),
        serving=timedelta(days=settings.cert_validity_days),
        rotate_before=timedelta(days=settings.rotate_before_days),
    )


def reconcile_once(settings: WebhookSettings, api_client: client.ApiClient) -> None:
    """Certificate (unless cert-manager owns it), then both configurations with its CA."""
    if settings.cert_manager:
        bundle = read_bundle(api_client, settings.namespace, settings.tls_secret)
        if bundle is None:
            logger.warning("waiting for cert-manager to fill %s", settings.tls_secret)
            return
    else:
        names = service_names(settings.service_name, settings.namespace, settings.extra_sans)
        bundle = ensure_secret(
            api_client, settings.namespace, settings.tls_secret, names, lifetimes(settings)
        )
    apply_configuration(api_client, render_mutating(settings, bundle.ca_bundle))
    apply_configuration(api_client, render_validating(settings, bundle.ca_bundle))


async def _duties(
    settings: WebhookSettings,
    api_client: client.ApiClient,
    view: ClusterView,
    metrics: WebhookMetrics,
    events: EventSink,
) -> None:
    audit = asyncio.create_task(
        audit_forever(
            api_client,
            view,
            settings.injection(),
            metrics,
            events,
            settings.audit_interval_seconds,
        )
    )
    try:
        while True:
            try:
                await asyncio.to_thread(reconcile_once, settings, api_client)
            except (ApiException, HTTPError, OSError) as error:
                logger.warning("reconciling certificate/configuration failed: %s", error)
            await asyncio.sleep(RECONCILE_INTERVAL_SECONDS)
    finally:
        audit.cancel()
        with suppress(asyncio.CancelledError):
            await audit


async def manage(
    settings: WebhookSettings,
    api_client: client.ApiClient,
    view: ClusterView,
    metrics: WebhookMetrics,
    events: EventSink,
) -> None:
    """Hold the Lease and do the duties while holding it; stand by otherwise. Until cancelled."""
    elector = LeaderElector(
        api_client,
        LeaseConfig(
            name=settings.lease_name,
            namespace=settings.namespace,
            identity=settings.identity,
            duration_seconds=15,
            renew_interval_seconds=5.0,
            retry_interval_seconds=2.0,
        ),
    )
    try:
        while True:
            await elector.acquire()
            metrics.leader.set(1)
            duties = asyncio.create_task(_duties(settings, api_client, view, metrics, events))
            holding = asyncio.create_task(elector.hold())
            try:
                await asyncio.wait({duties, holding}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                metrics.leader.set(0)
                for task in (duties, holding):
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
            logger.error("lost the webhook lease; standing by")
    finally:
        with suppress(ApiException, HTTPError, OSError):
            await elector.release()
