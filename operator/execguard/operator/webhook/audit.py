"""The periodic audit: running pods that enforce-mode policies select but that lack the sidecar.

Such pods were created while the webhook was unreachable (with failurePolicy
Ignore) or had the sidecar removed. Each is reported with a Warning Event and
counted in `execguard_missing_sidecar_pods`. Where a selecting policy opted in
with the annotation `execguard.io/missing-sidecar: deny`, the pod is deleted so
that its controller recreates it through the webhook (bare pods are only
reported: nothing would recreate them).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client

from execguard.operator.api.policy import EnforcementAction
from execguard.operator.webhook.admission import EventSink, EventTarget
from execguard.operator.webhook.cluster_view import ClusterView, NamespaceSnapshot
from execguard.operator.webhook.injection import InjectionSpec
from execguard.operator.webhook.metrics import WebhookMetrics
from execguard.operator.webhook.reviews import Pod
from execguard.operator.webhook.selection import Inject, decide, has_sidecar

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    """A pod that should carry the sidecar and does not."""

    namespace: str
    name: str
    uid: str
    policies: tuple[str, ...]
    remove: bool
    controlled: bool


def find_missing(
    pod: Pod, namespace: str, snapshot: NamespaceSnapshot, spec: InjectionSpec
) -> Finding | None:
    """The finding for one running pod, or None if it is fine. Pure."""
    if has_sidecar(pod):
        return None
    metadata = pod.get("metadata", {})
    decision = decide(pod, namespace, snapshot.labels, snapshot.policies, spec)
    if not isinstance(decision, Inject) or decision.enforcement is not EnforcementAction.ENFORCE:
        return None
    refusing = any(p.key in snapshot.deny_missing_sidecar for p in decision.policies)
    controlled = any(o.get("controller") for o in metadata.get("ownerReferences", []))
    return Finding(
        namespace=namespace,
        name=metadata.get("name", ""),
        uid=str(metadata.get("uid", "")) if "uid" in metadata else "",
        policies=tuple(p.key.slug for p in decision.policies),
        remove=refusing and controlled,
        controlled=controlled,
    )


async def audit_once(
    api_client: client.ApiClient,
    view: ClusterView,
    spec: InjectionSpec,
    metrics: WebhookMetrics,
    events: EventSink,
) -> list[Finding]:
    """Look at every running pod once; report and (where opted in) remove offenders."""
    core: Any = client.CoreV1Api(api_client)
    serialize: Any = api_client.sanitize_for_serialization
    listing = await asyncio.to_thread(core.list_pod_for_all_namespaces)
    pods: dict[str, list[Pod]] = {}
    for item in listing.items:
        if item.metadata.deletion_timestamp is not None:
            continue
        namespace = item.metadata.namespace
        if namespace in spec.excluded_namespaces:
            continue
        raw = cast(Pod, serialize(item))
        pods.setdefault(namespace, []).append(raw)
    findings: list[Finding] = []
    for namespace, members in sorted(pods.items()):
        snapshot = await view.snapshot(namespace)
        if snapshot is None or not snapshot.policies:
            continue
        for pod in members:
            finding = find_missing(pod, namespace, snapshot, spec)
            if finding is not None:
                findings.append(finding)
    metrics.missing_sidecar_pods.set(len(findings))
    for finding in findings:
        await _report(core, finding, events)
    return findings


async def _report(core: Any, finding: Finding, events: EventSink) -> None:
    target = EventTarget(finding.namespace, "Pod", finding.name, "v1", finding.uid or None)
    policies = ", ".join(finding.policies)
    if finding.remove:
        await events(
            target,
            "Warning",
            "MissingSidecarRemoved",
            f"pod runs without the execguard sidecar that policies {policies} require; "
            "deleting it so that its controller recreates it with the sidecar",
        )
        await asyncio.to_thread(core.delete_namespaced_pod, finding.name, finding.namespace)
        return
    await events(
        target,
        "Warning",
        "MissingSidecar",
        f"pod runs without the execguard sidecar that policies {policies} (enforce) require; "
        "its traffic is not checked. Recreate it (e.g. kubectl rollout restart).",
    )


async def audit_forever(
    api_client: client.ApiClient,
    view: ClusterView,
    spec: InjectionSpec,
    metrics: WebhookMetrics,
    events: EventSink,
    interval: float,
) -> None:
    """Audit every `interval` seconds until cancelled."""
    while True:
        try:
            findings = await audit_once(api_client, view, spec, metrics, events)
            if findings:
                logger.warning("%d pod(s) run without the required sidecar", len(findings))
        except Exception:
            # One failed round (API hiccup) must not end the audit.
            logger.exception("audit round failed")
        await asyncio.sleep(interval)
