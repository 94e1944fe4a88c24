"""kopf routing: decorators only, each handing off to a typed function in `handlers/`.

Importing this module registers the handlers on kopf's default registry; the
process is started by `execguard.operator.runner.run_operator`, which passes the
shared `OperatorContext` in as kopf's `memo`.
"""

from __future__ import annotations

from typing import Any

import kopf

from execguard.operator.api.base import GROUP, VERSION
from execguard.operator.handlers.context import EventSink, EventType, OperatorContext
from execguard.operator.handlers.handle_baseline import reconcile_baseline
from execguard.operator.handlers.handle_policy import pod_changed, reconcile_policy, remove_policy
from execguard.operator.kubernetes_api import ApiFailure, parse_policy
from execguard.operator.merging import Scope
from execguard.operator.rendering.configmap import PodView

ANNOTATION_PREFIX = "operator.execguard.io"
FINALIZER = "execguard.io/sidecar-config"
POLICY_RESOURCES = {
    Scope.NAMESPACED: "executionpolicies",
    Scope.CLUSTER: "clusterexecutionpolicies",
}


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's own bookkeeping in annotations (status is ours and schema-pruned)."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = 100  # post only the events we emit ourselves, not kopf's logs
    settings.watching.server_timeout = 300


@kopf.on.login()
def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
    """Authenticate kopf exactly as the operator's own API client (built by the runner)."""
    connection: kopf.ConnectionInfo = memo.connection
    return connection


def _context(memo: Any) -> OperatorContext:
    context: OperatorContext = memo.context
    return context


def _events(body: kopf.Body) -> EventSink:
    def emit(type_: EventType, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=message[:1024])

    return emit


def _retry_on_api_failure(failure: ApiFailure) -> kopf.TemporaryError:
    return kopf.TemporaryError(str(failure), delay=5 if failure.status == 409 else 15)


async def _reconcile(scope: Scope, body: kopf.Body, patch: kopf.Patch, memo: Any) -> None:
    policy = parse_policy(scope, body)
    try:
        status = await reconcile_policy(_context(memo), policy, _events(body))
    except ApiFailure as failure:
        raise _retry_on_api_failure(failure) from failure
    patch.status.update(status.model_dump(mode="json", by_alias=True, exclude_none=True))


async def _remove(scope: Scope, body: kopf.Body, memo: Any) -> None:
    try:
        await remove_policy(_context(memo), parse_policy(scope, body), _events(body))
    except ApiFailure as failure:
        raise _retry_on_api_failure(failure) from failure


@kopf.on.resume(GROUP, VERSION, "executionpolicies")
@kopf.on.create(GROUP, VERSION, "executionpolicies")
@kopf.on.update(GROUP, VERSION, "executionpolicies")
async def execution_policy(body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any) -> None:
    """An ExecutionPolicy appeared, changed, or the operator restarted."""
    await _reconcile(Scope.NAMESPACED, body, patch, memo)


@kopf.on.delete(GROUP, VERSION, "executionpolicies")
async def execution_policy_deleted(body: kopf.Body, memo: Any, **_: Any) -> None:
    """An ExecutionPolicy is being deleted: take it out of the rendered config first."""
    await _remove(Scope.NAMESPACED, body, memo)


@kopf.on.resume(GROUP, VERSION, "clusterexecutionpolicies")
@kopf.on.create(GROUP, VERSION, "clusterexecutionpolicies")
@kopf.on.update(GROUP, VERSION, "clusterexecutionpolicies")
async def cluster_execution_policy(body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any) -> None:
    """A ClusterExecutionPolicy appeared, changed, or the operator restarted."""
    await _reconcile(Scope.CLUSTER, body, patch, memo)


@kopf.on.delete(GROUP, VERSION, "clusterexecutionpolicies")
async def cluster_execution_policy_deleted(body: kopf.Body, memo: Any, **_: Any) -> None:
    """A ClusterExecutionPolicy is being deleted."""
    await _remove(Scope.CLUSTER, body, memo)


@kopf.on.resume(GROUP, VERSION, "driftbaselines")
@kopf.on.create(GROUP, VERSION, "driftbaselines")
@kopf.on.update(GROUP, VERSION, "driftbaselines")
async def drift_baseline(body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any) -> None:
    """A DriftBaseline appeared, changed, or the operator restarted."""
    status = await reconcile_baseline(_context(memo), body, _events(body))
    patch.status.update(status.model_dump(mode="json", by_alias=True, exclude_none=True))


@kopf.on.event("v1", "pods")
async def pod_event(
    event: kopf.RawEvent, body: kopf.Body, namespace: str | None, memo: Any, **_: Any
) -> None:
    """A pod appeared or changed: re-render its namespace if its policy set may differ."""
    if event.get("type") == "DELETED" or namespace is None:
        return
    metadata = body.get("metadata", {})
    ports = {
        str(port["name"]): int(port["containerPort"])
        for container in body.get("spec", {}).get("containers", [])
        for port in container.get("ports", []) or []
        if port.get("name")
    }
    pod = PodView(
        name=str(metadata.get("name")),
        labels=dict(metadata.get("labels", {})),
        annotations=dict(metadata.get("annotations", {})),
        container_ports=ports,
    )
    try:
        await pod_changed(_context(memo), namespace, pod)
    except ApiFailure as failure:
        # Event handlers are not retried; the next policy or pod change renders again.
        kopf.warn(body, reason="RenderFailed", message=str(failure))


@kopf.timer(GROUP, VERSION, "executionpolicies", interval=60, idle=30)
async def execution_policy_refresh(body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any) -> None:
    """Keep matchedPods current as pods come and go (and repair drifted ConfigMaps)."""
    await _reconcile(Scope.NAMESPACED, body, patch, memo)


@kopf.timer(GROUP, VERSION, "clusterexecutionpolicies", interval=60, idle=30)
async def cluster_execution_policy_refresh(
    body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any
) -> None:
    """Keep matchedPods and the set of selected namespaces current."""
    await _reconcile(Scope.CLUSTER, body, patch, memo)
