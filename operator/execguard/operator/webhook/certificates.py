"""The webhook's TLS: a CA and a serving certificate kept in one Secret, rotated before expiry.

Only the replica holding the webhook Lease writes the Secret (or cert-manager
does, when so configured); every replica reads it and serves whatever it holds.

Rotation: the serving certificate is re-issued (same CA) once less than
`rotate_before` of its life is left. The CA is replaced the same way; the old CA
stays in the Secret as `ca-previous.crt` and in the caBundle until it expires, so
replicas still serving a certificate of the old CA are trusted during the switch.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_KEY: Final = "ca.crt"
PREVIOUS_CA_KEY: Final = "ca-previous.crt"
CERT_KEY: Final = "tls.crt"
KEY_KEY: Final = "tls.key"
CA_PRIVATE_KEY: Final = "ca.key"
BACKDATE: Final = timedelta(minutes=5)
"""Certificates start a little in the past so small clock skew does not reject them."""


@dataclass(frozen=True)
class TlsBundle:
    """The Secret's content (PEM)."""

    ca_cert: bytes
    cert: bytes
    key: bytes
    ca_key: bytes | None = None
    previous_ca_cert: bytes | None = None

    @property
    def ca_bundle(self) -> bytes:
        """What the webhook configurations trust: the CA, and the previous one while valid."""
        return self.ca_cert + (self.previous_ca_cert or b"")

    def as_secret_data(self) -> dict[str, bytes]:
        """Keys and values of the Secret (before base64)."""
        data = {CA_KEY: self.ca_cert, CERT_KEY: self.cert, KEY_KEY: self.key}
        if self.ca_key is not None:
            data[CA_PRIVATE_KEY] = self.ca_key
        if self.previous_ca_cert is not None:
            data[PREVIOUS_CA_KEY] = self.previous_ca_cert
        return data

    @classmethod
    def from_secret_data(cls, data: dict[str, bytes]) -> TlsBundle | None:
        """The bundle in a Secret, or None if a required key is missing."""
        if not all(data.get(key) for key in (CA_KEY, CERT_KEY, KEY_KEY)):
            return None
        return cls(
            ca_cert=data[CA_KEY],
            cert=data[CERT_KEY],
            key=data[KEY_KEY],
            ca_key=data.get(CA_PRIVATE_KEY) or None,
            previous_ca_cert=data.get(PREVIOUS_CA_KEY) or None,
        )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def issue_ca(now: datetime, validity: timedelta, name: str = "execguard-webhook-ca") -> TlsBundle:
    """A new self-signed CA (cert and key only; `cert`/`key` are filled by `issue_serving`)."""
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return TlsBundle(ca_cert=pem, cert=b"", key=b"", ca_key=_key_pem(key))


def issue_serving(
    ca: TlsBundle, names: tuple[str, ...], now: datetime, validity: timedelta
) -> TlsBundle:
    """A serving certificate for `names` (DNS names or IP addresses) signed by `ca`."""
    if ca.ca_key is None:
        raise ValueError("the CA's private key is needed to issue certificates")
    ca_key = serialization.load_pem_private_key(ca.ca_key, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key must be an EC key")
    ca_cert = x509.load_pem_x509_certificate(ca.ca_cert)
    key = _new_key()
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    not_after = min(now + validity, ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return TlsBundle(
        ca_cert=ca.ca_cert,
        cert=cert.public_bytes(serialization.Encoding.PEM),
        key=_key_pem(key),
        ca_key=ca.ca_key,
        previous_ca_cert=ca.previous_ca_cert,
    )


def expires_at(pem: bytes) -> datetime:
    """When the (first) certificate in `pem` expires."""
    return x509.load_pem_x509_certificate(pem).not_valid_after_utc


def _due(pem: bytes, now: datetime, before: timedelta) -> bool:
    try:
        return expires_at(pem) - now < before
    except ValueError:
        return True  # unreadable: replace it


def _names_of(pem: bytes) -> set[str]:
    try:
        cert = x509.load_pem_x509_certificate(pem)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return set()
    return {str(name) for name in sans.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in sans.get_values_for_type(x509.IPAddress)
    }


@dataclass(frozen=True)
class Lifetimes:
    """How long certificates live and how early they are replaced."""

    ca: timedelta
    serving: timedelta
    rotate_before: timedelta


def reconcile_bundle(
    current: TlsBundle | None, names: tuple[str, ...], now: datetime, lifetimes: Lifetimes
) -> TlsBundle | None:
    """The bundle the Secret should hold, or None when `current` is still good."""
    bundle = current
    changed = False
    if (
        bundle is None
        or bundle.ca_key is None
        or _due(bundle.ca_cert, now, lifetimes.rotate_before)
    ):
        previous = (
            bundle.ca_cert if bundle is not None and not _expired(bundle.ca_cert, now) else None
        )
        fresh = issue_ca(now, lifetimes.ca)
        bundle = TlsBundle(fresh.ca_cert, b"", b"", fresh.ca_key, previous)
        changed = True
    elif bundle.previous_ca_cert is not None and _expired(bundle.previous_ca_cert, now):
        bundle = TlsBundle(bundle.ca_cert, bundle.cert, bundle.key, bundle.ca_key, None)
        changed = True
    if (
        changed
        or not bundle.cert
        or _due(bundle.cert, now, lifetimes.rotate_before)
        or _names_of(bundle.cert) != set(names)
        or not _signed_by(bundle.cert, bundle.ca_cert)
    ):
        bundle = issue_serving(bundle, names, now, lifetimes.serving)
        changed = True
    return bundle if changed else None


def _expired(pem: bytes, now: datetime) -> bool:
    try:
        return expires_at(pem) <= now
    except ValueError:
        return True


def _signed_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        ca = x509.load_pem_x509_certificate(ca_pem)
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def service_names(service: str, namespace: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    """The names the apiserver uses to reach the webhook Service, plus `extra`."""
    names = [
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
        f"{service}.{namespace}",
        *extra,
    ]
    return tuple(dict.fromkeys(names))


def now_utc() -> datetime:
    """The current time (the one place the clock is read for certificates)."""
    return datetime.now(UTC)
