"""Reads what a pod refers to: ConfigMaps, Secrets, field paths, tokens.

Kept apart from env and volume code so both resolve references the same way,
and a missing object surfaces as one error type the simulator reports the way
kubelet does (`CreateContainerConfigError`), retrying until it appears.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from kubernetes.client.exceptions import ApiException


class MissingReference(Exception):
    """A ConfigMap, Secret or key the pod needs does not exist (yet)."""


class ResourceReader:
    """Fetches referenced objects through the API, as the node would."""

    def __init__(self, core: Any) -> None:
        self._core = core

    def config_map(self, namespace: str, name: str, optional: bool) -> dict[str, str] | None:
        """The ConfigMap's data, None if optional and missing."""
        try:
            cm = self._core.read_namespaced_config_map(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                if optional:
                    return None
                raise MissingReference(f'configmap "{name}" not found') from exc
            raise
        data: dict[str, str] = dict(cm.data or {})
        for key, value in (cm.binary_data or {}).items():
            data[key] = base64.b64decode(value).decode(errors="replace")
        return data

    def secret(self, namespace: str, name: str, optional: bool) -> dict[str, str] | None:
        """The Secret's decoded data, None if optional and missing."""
        try:
            secret = self._core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                if optional:
                    return None
                raise MissingReference(f'secret "{name}" not found') from exc
            raise
        return {
            key: base64.b64decode(value).decode(errors="replace")
            for key, value in (secret.data or {}).items()
        }

    def key(self, kind: str, namespace: str, name: str, key: str, optional: bool) -> str | None:
        """One key of a ConfigMap or Secret."""
        data = (
            self.config_map(namespace, name, optional)
            if kind == "configmap"
            else self.secret(namespace, name, optional)
        )
        if data is None:
            return None
        if key not in data:
            if optional:
                return None
            raise MissingReference(f'key "{key}" not found in {kind} "{name}"')
        return data[key]

    def service_account_token(self, pod: Any, audience: str | None, expiry: int | None) -> str:
        """A bound ServiceAccount token for the pod, via the TokenRequest API."""
        spec: dict[str, Any] = {
            "boundObjectRef": {
                "kind": "Pod",
                "apiVersion": "v1",
                "name": pod.metadata.name,
                "uid": pod.metadata.uid,
            },
            "expirationSeconds": max(600, expiry or 3600),
        }
        if audience:
            spec["audiences"] = [audience]
        response = self._core.create_namespaced_service_account_token(
            pod.spec.service_account_name or "default",
            pod.metadata.namespace,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        )
        token: str = response.status.token
        return token


_LABEL_PATH = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


def field_value(pod: Any, field_path: str, pod_ip: str) -> str:
    """The value of a downward-API field path for a pod."""
    meta = pod.metadata
    simple = {
        "metadata.name": meta.name,
        "metadata.namespace": meta.namespace,
        "metadata.uid": meta.uid,
        "spec.nodeName": pod.spec.node_name,
        "spec.serviceAccountName": pod.spec.service_account_name,
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
    }
    if field_path in simple:
        return str(simple[field_path] or "")
    if field_path in ("metadata.labels", "metadata.annotations"):
        mapping = (meta.labels if field_path == "metadata.labels" else meta.annotations) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(mapping.items()))
    match = _LABEL_PATH.match(field_path)
    if match:
        mapping = (meta.labels if match.group(1) == "labels" else meta.annotations) or {}
        return str(mapping.get(match.group(2), ""))
    raise MissingReference(f"unsupported fieldPath {field_path!r}")
