"""Pods and policies for the webhook's unit tests."""

from __future__ import annotations

import copy
from typing import Any

from execguard.operator.api.policy import ClusterExecutionPolicySpec, ExecutionPolicySpec
from execguard.operator.merging import AppliedPolicy, Scope
from execguard.operator.rendering.configmap import applied_policy
from execguard.operator.webhook.reviews import Pod

NAMESPACE = "team-a"


def policy(
    name: str = "chat",
    *,
    labels: dict[str, str] | None = None,
    generation: int = 1,
    **spec: Any,
) -> AppliedPolicy:
    """A namespaced policy selecting `labels` (app=model by default)."""
    body = {"selector": {"matchLabels": labels or {"app": "model"}}, **spec}
    return applied_policy(
        Scope.NAMESPACED, name, NAMESPACE, generation, ExecutionPolicySpec.model_validate(body)
    )


def cluster_policy(name: str, namespace_labels: dict[str, str], **spec: Any) -> AppliedPolicy:
    """A cluster policy for namespaces with `namespace_labels`."""
    body = {"namespaceSelector": {"matchLabels": namespace_labels}, **spec}
    return applied_policy(
        Scope.CLUSTER, name, None, 1, ClusterExecutionPolicySpec.model_validate(body)
    )


def model_pod(**changes: Any) -> Pod:
    """An opted-in pod with a model container serving on the port named http (8000)."""
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "model-0",
            "labels": {"app": "model", "execguard.io/inject": "enabled"},
        },
        "spec": {
            "containers": [
                {
                    "name": "model",
                    "image": "example/model:1",
                    "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
                }
            ]
        },
    }
    for path, value in changes.items():
        target = pod
        *parents, last = path.split("__")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = copy.deepcopy(value)
    return pod  # type: ignore[return-value]
