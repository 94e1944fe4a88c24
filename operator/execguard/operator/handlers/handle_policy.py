"""Reconciling ExecutionPolicy and ClusterExecutionPolicy objects, and reacting to pods.

On every create, update and resume the spec is validated beyond the schema; a
valid generation is rendered into the sidecar ConfigMap of every namespace it
applies to, an invalid one only changes the status (the last valid generation
stays in effect). Status carries observedGeneration, Ready/Invalid conditions,
the last valid generation and the matched pod count; an Event is posted whenever
the Ready/Invalid state changes or a namespace's rendered config changes.
"""

from __future__ import annotations

from collections.abc import Mapping

from execguard.operator.api.base import ConditionStatus
from execguard.operator.api.policy import ClusterExecutionPolicySpec, PolicyStatus
from execguard.operator.handlers.context import EventSink, OperatorContext
from execguard.operator.handlers.rendering import NamespaceResult, render_namespace
from execguard.operator.kubernetes_api import PolicyObject
from execguard.operator.merging import AppliedPolicy, PolicyKey, Scope
from execguard.operator.rendering.configmap import PodView, applied_policy, needs_render
from execguard.operator.status.conditions import (
    INVALID,
    READY,
    invalid_conditions,
    status_of,
    valid_conditions,
)
from execguard.operator.validation.policy import validate_policy


async def _namespaces_for(ctx: OperatorContext, policy: PolicyObject) -> list[str]:
    """Namespaces to render: where the policy applies now, and where it applied before."""
    if policy.scope is Scope.NAMESPACED:
        assert policy.namespace is not None
        return [policy.namespace]
    assert isinstance(policy.spec, ClusterExecutionPolicySpec)
    selector = policy.spec.namespace_selector
    selected = {
        name for name, labels in (await ctx.api.namespaces()).items() if selector.matches(labels)
    }
    return sorted(selected | set(policy.status.rendered_namespaces or []))


async def _render_all(
    ctx: OperatorContext,
    namespaces: list[str],
    overrides: Mapping[PolicyKey, AppliedPolicy | None],
    emit: EventSink,
) -> list[NamespaceResult]:
    results = []
    for namespace in namespaces:
        result = await render_namespace(ctx.api, ctx.metrics, ctx.locks, namespace, overrides)
        if result.changed:
            emit("Normal", "Rendered", f"updated the sidecar config in namespace {namespace}")
        results.append(result)
    return results


async def reconcile_policy(
    ctx: OperatorContext, policy: PolicyObject, emit: EventSink
) -> PolicyStatus:
    """Validate, render if valid, and return the status to write."""
    kind = policy.scope.value
    with ctx.metrics.timed(kind):
        problems = await validate_policy(policy.spec, ctx.compilers)
        now = ctx.clock()
        previous = list(policy.status.conditions or [])
        if problems:
            conditions = invalid_conditions(
                previous, policy.generation, now, problems, policy.status.last_good_generation
            )
            invalid_message = next(c.message for c in conditions if c.type == INVALID)
            old_message = next((c.message for c in previous if c.type == INVALID), None)
            if status_of(previous, INVALID) is not ConditionStatus.TRUE or (
                old_message != invalid_message
            ):
                emit("Warning", "Invalid", invalid_message)
            ctx.metrics.reconciles.labels(kind=kind, result="invalid").inc()
            return policy.status.model_copy(
                update={"observed_generation": policy.generation, "conditions": conditions}
            )
        applied = applied_policy(
            policy.scope, policy.name, policy.namespace, policy.generation, policy.spec
        )
        results = await _render_all(
            ctx, await _namespaces_for(ctx, policy), {policy.key: applied}, emit
        )
        applied_in = [result for result in results if policy.key in result.matched]
        matched = sum(result.matched[policy.key] for result in applied_in)
        warnings = sorted(
            {problem for result in results for problem in result.problems.get(policy.key, [])}
        )
        message = f"in effect in {len(applied_in)} namespace(s); {matched} pod(s) matched"
        if warnings:
            message += "; warnings: " + "; ".join(warnings)
        conditions = valid_conditions(previous, policy.generation, now, message)
        if status_of(previous, READY) is not ConditionStatus.TRUE:
            emit("Normal", "Ready", f"generation {policy.generation} is valid and {message}")
        ctx.metrics.reconciles.labels(kind=kind, result="valid").inc()
        return policy.status.model_copy(
            update={
                "observed_generation": policy.generation,
                "last_good_generation": policy.generation,
                "conditions": conditions,
                "matched_pods": matched,
                "rendered_namespaces": sorted(result.namespace for result in applied_in),
            }
        )


async def remove_policy(ctx: OperatorContext, policy: PolicyObject, emit: EventSink) -> None:
    """Take a deleted policy out of every namespace's rendered config.

    Pods it was the last policy for are moved to a pass-through config, so they
    always have a config to read.
    """
    kind = policy.scope.value
    with ctx.metrics.timed(kind):
        namespaces = await _namespaces_for(ctx, policy)
        await _render_all(ctx, namespaces, {policy.key: None}, emit)
        ctx.metrics.reconciles.labels(kind=kind, result="deleted").inc()


async def pod_changed(ctx: OperatorContext, namespace: str, pod: PodView) -> None:
    """Re-render a namespace when a pod appears or its labels change."""
    namespace_labels = await ctx.api.namespace_labels(namespace)
    if namespace_labels is None or not needs_render(pod, namespace_labels):
        return
    with ctx.metrics.timed("Pod"):
        await render_namespace(ctx.api, ctx.metrics, ctx.locks, namespace, {})
