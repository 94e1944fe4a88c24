"""Reading and writing the webhook's TLS Secret, and serving what it holds.

`ensure_secret` is called by the managing replica only; `ServingCertificate` runs
in every replica and swaps the certificate of its SSLContext when the Secret
changes, so a rotation reaches new connections without a restart.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import tempfile
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from execguard.operator.webhook.certificates import (
    Lifetimes,
    TlsBundle,
    expires_at,
    now_utc,
    reconcile_bundle,
)
from execguard.operator.webhook.metrics import WebhookMetrics

logger = logging.getLogger(__name__)


def read_bundle(api_client: client.ApiClient, namespace: str, name: str) -> TlsBundle | None:
    """The bundle in the Secret, or None if the Secret or a key is missing."""
    core: Any = client.CoreV1Api(api_client)
    try:
        secret = core.read_namespaced_secret(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    data = {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}
    return TlsBundle.from_secret_data(data)


def ensure_secret(
    api_client: client.ApiClient,
    namespace: str,
    name: str,
    names: tuple[str, ...],
    lifetimes: Lifetimes,
) -> TlsBundle:
    """Issue or rotate the certificates in the Secret as needed; return what it holds."""
    core: Any = client.CoreV1Api(api_client)
    try:
        secret = core.read_namespaced_secret(name, namespace)
    except ApiException as error:
        if error.status != 404:
            raise
        secret = None
    data = (
        {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}
        if secret is not None
        else {}
    )
    current = TlsBundle.from_secret_data(data)
    wanted = reconcile_bundle(current, names, now_utc(), lifetimes)
    if wanted is None:
        assert current is not None
        return current
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "execguard-webhook"},
    }
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": metadata,
        "data": {k: base64.b64encode(v).decode() for k, v in wanted.as_secret_data().items()},
    }
    if secret is None:
        core.create_namespaced_secret(namespace, body)
        logger.info("created the webhook certificate Secret %s/%s", namespace, name)
    else:
        # resourceVersion: a replica that lost the Lease mid-write gets a 409, not a race.
        metadata["resourceVersion"] = secret.metadata.resource_version
        core.replace_namespaced_secret(name, namespace, body)
        logger.info("rotated the webhook certificate in %s/%s", namespace, name)
    return wanted


class ServingCertificate:
    """An SSLContext whose certificate follows a Secret (or a fixed file pair)."""

    def __init__(self, metrics: WebhookMetrics) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._metrics = metrics
        self._loaded: bytes | None = None
        self._directory = Path(tempfile.mkdtemp(prefix="execguard-webhook-tls-"))

    @property
    def loaded(self) -> bool:
        """Whether a certificate is in use (the server serves only then)."""
        return self._loaded is not None

    def load(self, cert: bytes, key: bytes) -> bool:
        """Use this certificate for new connections; True if it changed."""
        if cert + key == self._loaded:
            return False
        cert_path = self._directory / "tls.crt"
        key_path = self._directory / "tls.key"
        cert_path.write_bytes(cert)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        self.context.load_cert_chain(cert_path, key_path)
        self._loaded = cert + key
        self._metrics.certificate_expiry.set(expires_at(cert).timestamp())
        logger.info("serving certificate loaded (expires %s)", expires_at(cert).isoformat())
        return True

    async def follow_secret(
        self, api_client: client.ApiClient, namespace: str, name: str, interval: float
    ) -> None:
        """Poll the Secret and reload on change, until cancelled."""
        while True:
            try:
                bundle = await asyncio.to_thread(read_bundle, api_client, namespace, name)
                if bundle is not None:
                    self.load(bundle.cert, bundle.key)
            except (ApiException, ssl.SSLError, ValueError, OSError) as error:
                logger.warning("reading the serving certificate failed: %s", error)
            await asyncio.sleep(interval if self.loaded else min(interval, 1.0))

    async def follow_files(self, cert: Path, key: Path, interval: float) -> None:
        """Poll a certificate file pair (e.g. a mounted Secret) and reload on change."""
        while True:
            try:
                pair = await asyncio.to_thread(lambda: (cert.read_bytes(), key.read_bytes()))
                self.load(*pair)
            except (ssl.SSLError, ValueError, OSError) as error:
                logger.warning("reading %s failed: %s", cert, error)
            await asyncio.sleep(interval if self.loaded else min(interval, 1.0))
