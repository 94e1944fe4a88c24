"""Certificates: issued, kept while good, rotated before expiry, CA rotation keeps trust."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from execguard.operator.webhook.certificates import Lifetimes, reconcile_bundle

NAMES = ("execguard-webhook.execguard-system.svc", "127.0.0.1")
LIFE = Lifetimes(
    ca=timedelta(days=100), serving=timedelta(days=10), rotate_before=timedelta(days=3)
)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_first_run_issues_a_ca_and_a_serving_cert_for_the_names(tmp_path):
    bundle = reconcile_bundle(None, NAMES, NOW, LIFE)
    assert bundle is not None
    cert = x509.load_pem_x509_certificate(bundle.cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "execguard-webhook.execguard-system.svc" in sans.get_values_for_type(x509.DNSName)
    (tmp_path / "c").write_bytes(bundle.cert)
    (tmp_path / "k").write_bytes(bundle.key)
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
        tmp_path / "c", tmp_path / "k"
    )
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(bundle.ca_cert))


def test_a_good_bundle_is_kept():
    bundle = reconcile_bundle(None, NAMES, NOW, LIFE)
    assert reconcile_bundle(bundle, NAMES, NOW + timedelta(days=1), LIFE) is None


def test_serving_cert_is_rotated_before_expiry_with_the_same_ca():
    bundle = reconcile_bundle(None, NAMES, NOW, LIFE)
    assert bundle is not None
    rotated = reconcile_bundle(bundle, NAMES, NOW + timedelta(days=8), LIFE)
    assert rotated is not None
    assert rotated.cert != bundle.cert
    assert rotated.ca_cert == bundle.ca_cert


def test_changed_names_reissue_the_serving_cert():
    bundle = reconcile_bundle(None, NAMES, NOW, LIFE)
    assert reconcile_bundle(bundle, (*NAMES, "other.svc"), NOW, LIFE) is not None


def test_ca_rotation_keeps_the_old_ca_in_the_bundle_until_it_expires():
    bundle = reconcile_bundle(None, NAMES, NOW, LIFE)
    assert bundle is not None
    rotated = reconcile_bundle(bundle, NAMES, NOW + timedelta(days=98), LIFE)
    assert rotated is not None
    assert rotated.ca_cert != bundle.ca_cert
    assert rotated.previous_ca_cert == bundle.ca_cert
    assert bundle.ca_cert in rotated.ca_bundle
    later = reconcile_bundle(rotated, NAMES, NOW + timedelta(days=101), LIFE)
    assert later is not None
    assert later.previous_ca_cert is None


async def test_a_rotated_certificate_is_served_to_new_connections_without_restart(tmp_path):
    import asyncio

    from execguard.operator.webhook.metrics import WebhookMetrics
    from execguard.operator.webhook.tls_secret import ServingCertificate

    first = reconcile_bundle(None, NAMES, datetime.now(UTC), LIFE)
    second = reconcile_bundle(None, NAMES, datetime.now(UTC), LIFE)
    assert first is not None
    assert second is not None
    serving = ServingCertificate(WebhookMetrics())
    assert serving.load(first.cert, first.key)
    assert not serving.load(first.cert, first.key), "unchanged: nothing to do"

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=serving.context)
    port = server.sockets[0].getsockname()[1]

    async def handshake(ca: bytes) -> None:
        client = ssl.create_default_context(cadata=ca.decode())
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname="127.0.0.1"
        )
        writer.close()
        await writer.wait_closed()

    try:
        await handshake(first.ca_cert)
        assert serving.load(second.cert, second.key)
        await handshake(second.ca_cert)
        with pytest.raises(ssl.SSLCertVerificationError):
            await handshake(first.ca_cert)
    finally:
        server.close()
        await server.wait_closed()
