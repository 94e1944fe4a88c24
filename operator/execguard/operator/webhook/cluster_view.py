"""What admission needs to know from the API: a namespace's labels and policies in effect.

Read per request rather than kept in a cache of our own: a replica holds nothing
that matters in memory, and any replica answers any request the same way. Lists
are served from the apiserver's watch cache (resourceVersion=0), like an informer.
The policies in effect are computed exactly as the operator renders them
(`in_effect`): the current generation once validated, else the last valid one
kept in the namespace's ConfigMap; a policy never validated yet does not apply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from execguard.operator.api.base import GROUP, VERSION
from execguard.operator.handlers.rendering import in_effect
from execguard.operator.kubernetes_api import (
    PLURALS,
    ApiFailure,
    KubernetesApi,
    PolicyObject,
    parse_policy,
)
from execguard.operator.merging import AppliedPolicy, PolicyKey, Scope
from execguard.operator.rendering.configmap import stored_policies

READ_ERRORS: Final = (ApiException, ApiFailure, HTTPError, OSError)
"""Failures of reading the API: the request fails and the failurePolicy applies."""
MISSING_SIDECAR_ANNOTATION: Final = "execguard.io/missing-sidecar"
"""On a policy: `deny` refuses pods it selects (enforce mode) that come without the sidecar."""


class ClusterUnavailable(Exception):
    """The API could not be read; the request fails and the failurePolicy applies."""


@dataclass(frozen=True)
class NamespaceSnapshot:
    """A namespace's labels and the policies in effect there."""

    labels: Mapping[str, str]
    policies: tuple[AppliedPolicy, ...]
    deny_missing_sidecar: frozenset[PolicyKey] = frozenset()


class ClusterView(Protocol):
    """The seam between admission logic and the API (a dict-backed double in unit tests)."""

    async def snapshot(self, namespace: str) -> NamespaceSnapshot | None:
        """The namespace's labels and policies, or None if the namespace does not exist."""
        ...


def _policies_from(
    scope: Scope, listing: Mapping[str, Any]
) -> list[tuple[PolicyObject, Mapping[str, str]]]:
    result = []
    for item in listing.get("items", []):
        try:
            policy = parse_policy(scope, item)
        except ValueError:
            continue  # the operator reports it; it cannot be in effect
        annotations = item.get("metadata", {}).get("annotations") or {}
        result.append((policy, annotations))
    return result


class ApiClusterView:
    """`ClusterView` over the Kubernetes API."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._api = KubernetesApi(api_client)
        self._core: Any = client.CoreV1Api(api_client)
        self._custom: Any = client.CustomObjectsApi(api_client)

    def _namespace_labels(self, namespace: str) -> dict[str, str] | None:
        # Raw JSON: building the generated V1Namespace model costs more than the call.
        try:
            response = self._core.read_namespace(namespace, _preload_content=False)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        body = json.loads(response.data)
        if body.get("status", {}).get("phase") == "Terminating":
            return None
        labels: dict[str, str] = body.get("metadata", {}).get("labels") or {}
        return labels

    async def _list(self, scope: Scope, namespace: str) -> Mapping[str, Any]:
        if scope is Scope.NAMESPACED:
            call = self._custom.list_namespaced_custom_object
            args: tuple[str, ...] = (GROUP, VERSION, namespace, PLURALS[scope])
        else:
            call = self._custom.list_cluster_custom_object
            args = (GROUP, VERSION, PLURALS[scope])
        # resourceVersion=0: served from the apiserver's watch cache without waiting for
        # it to prove it is current (a consistent list waits for an etcd progress
        # notification after every write: ~80 ms per admission while pods are being
        # created). The cache trails etcd by milliseconds, the same as an informer.
        result: Mapping[str, Any] = await asyncio.to_thread(call, *args, resource_version="0")
        return result

    async def snapshot(self, namespace: str) -> NamespaceSnapshot | None:
        """Labels and policies, read in parallel."""
        try:
            labels, namespaced, cluster = await asyncio.gather(
                asyncio.to_thread(self._namespace_labels, namespace),
                self._list(Scope.NAMESPACED, namespace),
                self._list(Scope.CLUSTER, namespace),
            )
        except READ_ERRORS as error:
            raise ClusterUnavailable(f"cannot read policies for {namespace}: {error}") from error
        if labels is None:
            return None
        objects = [
            *_policies_from(Scope.NAMESPACED, namespaced),
            *_policies_from(Scope.CLUSTER, cluster),
        ]
        objects = [(policy, notes) for policy, notes in objects if not policy.deleting]
        stored: Mapping[PolicyKey, AppliedPolicy] = {}
        if any(p.status.last_good_generation != p.generation for p, _ in objects):
            # Only then is the last valid generation (kept in the ConfigMap) needed.
            try:
                configmap = await self._api.configmap(namespace)
            except READ_ERRORS as error:
                raise ClusterUnavailable(f"cannot read the sidecar ConfigMap: {error}") from error
            stored = stored_policies(configmap.data) if configmap else {}
        policies = []
        deny = set()
        for policy, notes in objects:
            effective = in_effect(policy, stored)
            if effective is None:
                continue
            policies.append(effective)
            if notes.get(MISSING_SIDECAR_ANNOTATION) == "deny":
                deny.add(policy.key)
        return NamespaceSnapshot(labels, tuple(policies), frozenset(deny))


class StaticClusterView:
    """A `ClusterView` from fixed snapshots (unit tests, benchmarks of the pure path)."""

    def __init__(self, snapshots: Mapping[str, NamespaceSnapshot]) -> None:
        self._snapshots = dict(snapshots)

    async def snapshot(self, namespace: str) -> NamespaceSnapshot | None:
        """The fixed snapshot, if any."""
        return self._snapshots.get(namespace)
