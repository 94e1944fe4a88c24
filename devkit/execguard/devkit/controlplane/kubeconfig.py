"""Kubeconfig files for the local control plane's users."""

from __future__ import annotations

from pathlib import Path

import yaml


def _write(
    path: Path, *, server: str, ca_cert: Path, user: str, credentials: dict[str, str]
) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "execguard-dev",
                "cluster": {"server": server, "certificate-authority": str(ca_cert)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [
            {"name": "execguard-dev", "context": {"cluster": "execguard-dev", "user": user}}
        ],
        "current-context": "execguard-dev",
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path


def write_kubeconfig(
    path: Path, *, server: str, ca_cert: Path, client_cert: Path, client_key: Path, user: str
) -> Path:
    """Write a single-context kubeconfig authenticating with a client certificate."""
    credentials = {"client-certificate": str(client_cert), "client-key": str(client_key)}
    return _write(path, server=server, ca_cert=ca_cert, user=user, credentials=credentials)


def write_token_kubeconfig(
    path: Path, *, server: str, ca_cert: Path, token: str, user: str
) -> Path:
    """Write a kubeconfig authenticating with a bearer token (e.g. a ServiceAccount's)."""
    return _write(path, server=server, ca_cert=ca_cert, user=user, credentials={"token": token})
