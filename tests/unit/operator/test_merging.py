"""Several policies selecting one pod: all apply, the strictest boundary wins."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, strategies as st

from execguard.operator.api.policy import ClusterExecutionPolicySpec, ExecutionPolicySpec
from execguard.operator.merging import AppliedPolicy, PolicyKey, Scope, merge
from execguard.operator.rendering.configmap import applied_policy
from execguard.operator.rendering.sidecar_config import render_sidecar_config

SELECTOR = {"matchLabels": {"app": "model"}}


def namespaced(name: str, **spec: Any) -> AppliedPolicy:
    parsed = ExecutionPolicySpec.model_validate({"selector": SELECTOR, **spec})
    return applied_policy(Scope.NAMESPACED, name, "team", 1, parsed)


def cluster(name: str, **spec: Any) -> AppliedPolicy:
    parsed = ClusterExecutionPolicySpec.model_validate(
        {"namespaceSelector": {"matchLabels": {"tier": "ai"}}, **spec}
    )
    return applied_policy(Scope.CLUSTER, name, None, 1, parsed)


def test_smallest_size_and_concurrency_limits_win() -> None:
    merged = merge(
        [
            namespaced("a", boundaries={"maxRequestBytes": 1000, "maxConcurrentRequests": 4}),
            cluster("b", boundaries={"maxRequestBytes": 500}),
        ]
    )
    assert merged.boundaries.max_request_bytes == 500
    assert merged.boundaries.max_concurrent_requests == 4


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        (["dryrun", "warn"], "warn"),
        (["warn", "enforce"], "enforce"),
        (["dryrun", "dryrun"], "dryrun"),
    ],
)
def test_the_strictest_enforcement_action_wins(actions: list[str], expected: str) -> None:
    policies = [namespaced(f"p{i}", enforcementAction=a) for i, a in enumerate(actions)]
    assert merge(policies).enforcement_action == expected


def test_closed_failure_policy_beats_open() -> None:
    merged = merge([namespaced("a", failurePolicy="open"), cluster("b", failurePolicy="closed")])
    assert merged.failure_policy == "closed"


def test_allowed_models_intersect_and_an_unset_list_allows_any() -> None:
    merged = merge(
        [
            namespaced("a", boundaries={"allowedModels": ["x", "y", "z"]}),
            cluster("b", boundaries={"allowedModels": ["y", "z", "w"]}),
            namespaced("c"),
        ]
    )
    assert merged.boundaries.allowed_models == ["y", "z"]
    assert merged.boundaries.allowed_tools is None


def test_disjoint_model_lists_allow_no_model_at_all() -> None:
    merged = merge(
        [
            namespaced("a", boundaries={"allowedModels": ["x"]}),
            cluster("b", boundaries={"allowedModels": ["y"]}),
        ]
    )
    assert merged.boundaries.allowed_models == []


def test_the_lowest_rate_limit_wins_whole() -> None:
    merged = merge(
        [
            namespaced("a", boundaries={"rateLimit": {"requestsPerSecond": 50, "burst": 100}}),
            cluster(
                "b",
                boundaries={
                    "rateLimit": {
                        "requestsPerSecond": 5,
                        "burst": 5,
                        "key": {"kind": "header", "header": "x-api-key"},
                    }
                },
            ),
        ]
    )
    limit = merged.boundaries.rate_limit
    assert limit is not None
    assert (limit.requests_per_second, limit.burst) == (5, 5)
    assert limit.key is not None
    assert limit.key.header == "x-api-key"


def test_token_caps_take_the_minimum_and_reject_beats_clamp() -> None:
    merged = merge(
        [
            namespaced("a", boundaries={"tokens": {"maxTokens": 100, "mode": "clamp"}}),
            cluster("b", boundaries={"tokens": {"maxTokens": 400, "mode": "reject"}}),
        ]
    )
    assert merged.boundaries.tokens is not None
    assert merged.boundaries.tokens.max_tokens == 100
    assert merged.boundaries.tokens.mode == "reject"


def test_every_rego_module_of_every_policy_applies_under_its_own_name() -> None:
    module = {"name": "m", "rego": "package execguard.request\n"}
    merged = merge(
        [
            namespaced("a", validation={"request": {"policies": [module]}}),
            cluster("b", validation={"request": {"policies": [module]}}),
        ]
    )
    assert set(merged.validation.request_modules) == {"xp.a/m", "cxp.b/m"}


def test_json_schemas_of_several_policies_must_all_hold() -> None:
    merged = merge(
        [
            namespaced("a", validation={"response": {"jsonSchema": {"required": ["x"]}}}),
            cluster("b", validation={"response": {"jsonSchema": {"required": ["y"]}}}),
        ]
    )
    config = render_sidecar_config(merged, port=8000, generation=1)
    assert config.validation.response.json_schema == {
        "allOf": [{"required": ["x"]}, {"required": ["y"]}]
    }


def test_block_beats_reask_and_the_smallest_reask_budget_is_kept() -> None:
    merged = merge(
        [
            namespaced("a", validation={"response": {"onFailure": "reask", "maxReasks": 3}}),
            namespaced("b", validation={"response": {"onFailure": "reask", "maxReasks": 1}}),
        ]
    )
    assert (merged.validation.on_failure, merged.validation.max_reasks) == ("reask", 1)
    stricter = merge([*merged.sources, cluster("c", validation={"response": {}})])
    assert stricter.validation.on_failure == "block"


def test_disagreeing_upstream_ports_are_reported_and_the_namespaced_policy_wins() -> None:
    merged = merge(
        [cluster("a", upstream={"port": 9000}), namespaced("b", upstream={"port": 8000})]
    )
    assert merged.upstream.port == 8000
    assert len(merged.conflicts) == 1
    assert "upstream.port" in merged.conflicts[0]


def test_merging_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        merge([])


def test_sources_are_ordered_namespaced_first_then_by_name() -> None:
    merged = merge([cluster("a"), namespaced("z"), namespaced("b")])
    assert [source.key for source in merged.sources] == [
        PolicyKey.of(Scope.NAMESPACED, "b", "team"),
        PolicyKey.of(Scope.NAMESPACED, "z", "team"),
        PolicyKey.of(Scope.CLUSTER, "a", None),
    ]


limits = st.none() | st.integers(min_value=1, max_value=10_000)
actions = st.sampled_from(["enforce", "warn", "dryrun"])


@given(cluster_limit=limits, namespaced_limit=limits, cluster_action=actions, ns_action=actions)
def test_a_namespaced_policy_never_loosens_a_cluster_policy(
    cluster_limit: int | None, namespaced_limit: int | None, cluster_action: str, ns_action: str
) -> None:
    platform = cluster(
        "floor",
        enforcementAction=cluster_action,
        boundaries={"maxConcurrentRequests": cluster_limit},
    )
    team = namespaced(
        "team", enforcementAction=ns_action, boundaries={"maxConcurrentRequests": namespaced_limit}
    )
    alone = merge([platform])
    together = merge([platform, team])
    order = ["enforce", "warn", "dryrun"]
    assert order.index(together.enforcement_action) <= order.index(alone.enforcement_action)
    if alone.boundaries.max_concurrent_requests is not None:
        assert together.boundaries.max_concurrent_requests is not None
        assert (
            together.boundaries.max_concurrent_requests <= alone.boundaries.max_concurrent_requests
        )
