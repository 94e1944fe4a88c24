"""The operator's access to the Kubernetes API: a few typed calls, nothing else.

Wraps the synchronous `kubernetes` client (run in worker threads) so handlers
see pydantic models and small dataclasses, never raw dicts. Errors from the API
surface as `ApiFailure` (with the HTTP status) so handlers can decide to retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from execguard.operator.api.base import API_VERSION, GROUP, VERSION
from execguard.operator.api.policy import (
    ClusterExecutionPolicySpec,
    ExecutionPolicySpec,
    PolicyStatus,
)
from execguard.operator.merging import PolicyKey, Scope
from execguard.operator.rendering.configmap import CONFIGMAP_NAME, PodView

PLURALS: Final = {
    Scope.NAMESPACED: "executionpolicies",
    Scope.CLUSTER: "clusterexecutionpolicies",
}
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "execguard-operator"}


class ApiFailure(Exception):
    """A Kubernetes API call failed; `status` is the HTTP status (0 if none)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PolicyObject:
    """A policy as read from the API."""

    scope: Scope
    name: str
    namespace: str | None
    uid: str
    generation: int
    deleting: bool
    spec: ExecutionPolicySpec | ClusterExecutionPolicySpec
    status: PolicyStatus

    @property
    def key(self) -> PolicyKey:
        """The policy's identity for merging and rendering."""
        return PolicyKey.of(self.scope, self.name, self.namespace)


@dataclass(frozen=True)
class ConfigMapState:
    """The sidecar ConfigMap as it is now."""

    data: dict[str, str]
    resource_version: str
    owner_uids: frozenset[str]


@dataclass(frozen=True)
class OwnerRef:
    """An owner of the sidecar ConfigMap."""

    kind: str
    name: str
    uid: str


def parse_policy(scope: Scope, body: Mapping[str, Any]) -> PolicyObject:
    """A policy object from its JSON body (as the API or kopf delivers it)."""
    metadata = body.get("metadata", {})
    spec_model = ExecutionPolicySpec if scope is Scope.NAMESPACED else ClusterExecutionPolicySpec
    return PolicyObject(
        scope=scope,
        name=str(metadata["name"]),
        namespace=metadata.get("namespace") if scope is Scope.NAMESPACED else None,
        uid=str(metadata.get("uid", "")),
        generation=int(metadata.get("generation", 0)),
        deleting=metadata.get("deletionTimestamp") is not None,
        spec=spec_model.model_validate(body.get("spec") or {}),
        status=PolicyStatus.model_validate(body.get("status") or {}),
    )


class KubernetesApi:
    """The calls the operator makes, bound to one `kubernetes.client.ApiClient`."""

    def __init__(self, api_client: client.ApiClient) -> None:
        # Typed as Any on purpose: the generated models mark every field Optional,
        # including ones the API always sets on stored objects (metadata.name ...).
        self._core: Any = client.CoreV1Api(api_client)
        self._custom: Any = client.CustomObjectsApi(api_client)

    async def _call(
        self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except ApiException as error:
            raise ApiFailure(f"{what}: {error.status} {error.reason}", error.status or 0) from error

    async def namespace_labels(self, name: str) -> dict[str, str] | None:
        """A namespace's labels, or None if it does not exist (or is terminating)."""
        try:
            namespace = await self._call(f"get namespace {name}", self._core.read_namespace, name)
        except ApiFailure as failure:
            if failure.status == 404:
                return None
            raise
        if namespace.status and namespace.status.phase == "Terminating":
            return None
        return dict(namespace.metadata.labels or {})

    async def namespaces(self) -> dict[str, dict[str, str]]:
        """Every namespace with its labels."""
        listing = await self._call("list namespaces", self._core.list_namespace)
        return {item.metadata.name: dict(item.metadata.labels or {}) for item in listing.items}

    async def pods(self, namespace: str) -> list[PodView]:
        """The pods of a namespace, as rendering sees them."""
        listing = await self._call(
            f"list pods in {namespace}", self._core.list_namespaced_pod, namespace
        )
        views = []
        for pod in listing.items:
            if pod.metadata.deletion_timestamp is not None:
                continue
            ports: dict[str, int] = {}
            for container in pod.spec.containers or []:
                for port in container.ports or []:
                    if port.name:
                        ports[port.name] = int(port.container_port)
            views.append(
                PodView(
                    name=pod.metadata.name,
                    labels=dict(pod.metadata.labels or {}),
                    annotations=dict(pod.metadata.annotations or {}),
                    container_ports=ports,
                )
            )
        return views

    async def policies(self, scope: Scope, namespace: str | None = None) -> list[PolicyObject]:
        """Every policy of `scope` (namespaced ones in `namespace` only)."""
        if scope is Scope.NAMESPACED:
            assert namespace is not None
            listing = await self._call(
                f"list executionpolicies in {namespace}",
                self._custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURALS[scope],
            )
        else:
            listing = await self._call(
                "list clusterexecutionpolicies",
                self._custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                PLURALS[scope],
            )
        return [parse_policy(scope, item) for item in listing.get("items", [])]

    async def configmap(self, namespace: str) -> ConfigMapState | None:
        """The sidecar ConfigMap of a namespace, or None."""
        try:
            found = await self._call(
                f"get configmap {namespace}/{CONFIGMAP_NAME}",
                self._core.read_namespaced_config_map,
                CONFIGMAP_NAME,
                namespace,
            )
        except ApiFailure as failure:
            if failure.status == 404:
                return None
            raise
        return ConfigMapState(
            data=dict(found.data or {}),
            resource_version=found.metadata.resource_version,
            owner_uids=frozenset(ref.uid for ref in found.metadata.owner_references or []),
        )

    async def write_configmap(
        self,
        namespace: str,
        data: Mapping[str, str],
        owners: list[OwnerRef],
        previous: ConfigMapState | None,
    ) -> None:
        """Create or replace the sidecar ConfigMap (optimistic: 409 if it changed meanwhile)."""
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": CONFIGMAP_NAME,
                "namespace": namespace,
                "labels": MANAGED_BY,
                "ownerReferences": [
                    {
                        "apiVersion": API_VERSION,
                        "kind": owner.kind,
                        "name": owner.name,
                        "uid": owner.uid,
                        "blockOwnerDeletion": False,
                    }
                    for owner in owners
                ],
            },
            "data": dict(data),
        }
        if previous is None:
            await self._call(
                f"create configmap {namespace}/{CONFIGMAP_NAME}",
                self._core.create_namespaced_config_map,
                namespace,
                body,
            )
        else:
            body["metadata"]["resourceVersion"] = previous.resource_version
            await self._call(
                f"replace configmap {namespace}/{CONFIGMAP_NAME}",
                self._core.replace_namespaced_config_map,
                CONFIGMAP_NAME,
                namespace,
                body,
            )

    async def delete_configmap(self, namespace: str, previous: ConfigMapState) -> None:
        """Delete the sidecar ConfigMap if it is still the version we read."""
        try:
            await self._call(
                f"delete configmap {namespace}/{CONFIGMAP_NAME}",
                self._core.delete_namespaced_config_map,
                CONFIGMAP_NAME,
                namespace,
                body=client.V1DeleteOptions(
                    preconditions=client.V1Preconditions(resource_version=previous.resource_version)
                ),
            )
        except ApiFailure as failure:
            if failure.status != 404:
                raise

    async def annotate_pod(self, namespace: str, pod: str, annotations: Mapping[str, str]) -> None:
        """Merge-patch annotations onto a pod; a pod that is gone is ignored."""
        try:
            await self._call(
                f"annotate pod {namespace}/{pod}",
                self._core.patch_namespaced_pod,
                pod,
                namespace,
                {"metadata": {"annotations": dict(annotations)}},
            )
        except ApiFailure as failure:
            if failure.status != 404:
                raise
