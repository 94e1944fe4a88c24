"""Re-rendering one namespace's sidecar ConfigMap from the policies that apply there."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from execguard.operator.kubernetes_api import (
    ApiFailure,
    KubernetesApi,
    OwnerRef,
    PolicyObject,
)
from execguard.operator.merging import AppliedPolicy, PolicyKey, Scope
from execguard.operator.metrics import OperatorMetrics
from execguard.operator.rendering.configmap import (
    applied_policy,
    plan_namespace,
    stored_policies,
)

logger = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES: Final = 5


@dataclass(frozen=True)
class NamespaceResult:
    """What rendering one namespace found and did."""

    namespace: str
    matched: dict[PolicyKey, int] = field(default_factory=dict)
    problems: dict[PolicyKey, list[str]] = field(default_factory=dict)
    changed: bool = False


@dataclass
class NamespaceLocks:
    """One lock per namespace, so two reconciles never render the same ConfigMap at once."""

    _locks: defaultdict[str, asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )

    def __call__(self, namespace: str) -> asyncio.Lock:
        """The lock for `namespace`."""
        return self._locks[namespace]


def in_effect(
    policy: PolicyObject, stored: Mapping[PolicyKey, AppliedPolicy]
) -> AppliedPolicy | None:
    """The generation of `policy` that applies: the current one if valid, else the stored one."""
    if policy.status.last_good_generation == policy.generation:
        return applied_policy(
            policy.scope, policy.name, policy.namespace, policy.generation, policy.spec
        )
    return stored.get(policy.key)


async def render_namespace(
    api: KubernetesApi,
    metrics: OperatorMetrics,
    locks: NamespaceLocks,
    namespace: str,
    overrides: Mapping[PolicyKey, AppliedPolicy | None],
) -> NamespaceResult:
    """Bring `namespace`'s ConfigMap and pod annotations in line with its policies.

    `overrides` replaces what the API says for the policies being reconciled right
    now: a valid new generation not yet recorded in status, or None for a policy
    being deleted.
    """
    async with locks(namespace):
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                return await _render_once(api, metrics, namespace, overrides)
            except ApiFailure as failure:
                if failure.status != 409:
                    raise
                logger.info("ConfigMap in %s changed while rendering; retrying", namespace)
        raise ApiFailure(f"ConfigMap in {namespace} kept changing while rendering", 409)


async def _render_once(
    api: KubernetesApi,
    metrics: OperatorMetrics,
    namespace: str,
    overrides: Mapping[PolicyKey, AppliedPolicy | None],
) -> NamespaceResult:
    labels = await api.namespace_labels(namespace)
    if labels is None:
        return NamespaceResult(namespace)
    previous = await api.configmap(namespace)
    previous_data = previous.data if previous else {}
    stored = stored_policies(previous_data)
    objects = [
        *await api.policies(Scope.NAMESPACED, namespace),
        *await api.policies(Scope.CLUSTER),
    ]
    uids = {obj.key: obj.uid for obj in objects}
    policies: list[AppliedPolicy] = []
    for obj in objects:
        if obj.key in overrides or obj.deleting:
            continue
        effective = in_effect(obj, stored)
        if effective is not None:
            policies.append(effective)
    policies.extend(policy for policy in overrides.values() if policy is not None)
    pods = await api.pods(namespace)
    plan = plan_namespace(labels, policies, pods, previous_data)
    owners = [
        OwnerRef(kind=key.scope.value, name=key.name, uid=uids[key])
        for key in sorted(plan.matched)
        if key in uids
    ]
    changed = False
    if not plan.data:
        if previous is not None:
            await api.delete_configmap(namespace, previous)
            metrics.configmap_writes.labels(operation="delete").inc()
            changed = True
    elif (
        previous is None
        or previous.data != plan.data
        or previous.owner_uids != {owner.uid for owner in owners}
    ):
        await api.write_configmap(namespace, plan.data, owners, previous)
        metrics.configmap_writes.labels(operation="create" if previous is None else "replace").inc()
        changed = True
    for pod, wanted in plan.changed_pods(pods).items():
        await api.annotate_pod(namespace, pod, wanted)
    return NamespaceResult(namespace, plan.matched, plan.problems, changed)
