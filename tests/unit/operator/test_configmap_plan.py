"""Which config file each injected pod reads, and what the namespace ConfigMap holds."""

from __future__ import annotations

from typing import Any

from execguard.operator.api.policy import ExecutionPolicySpec
from execguard.operator.merging import AppliedPolicy, Scope
from execguard.operator.rendering.configmap import (
    CONFIG_KEY_ANNOTATION,
    LABELS_HASH_ANNOTATION,
    UPSTREAM_PORT_ANNOTATION,
    PodView,
    applied_policy,
    config_key_for,
    needs_render,
    plan_namespace,
    stored_key,
    stored_policies,
)
from execguard.sidecar.config import parse_config

OPTED_IN = {"execguard.io/inject": "enabled"}


def policy(name: str, app: str, generation: int = 1, **spec: Any) -> AppliedPolicy:
    parsed = ExecutionPolicySpec.model_validate({"selector": {"matchLabels": {"app": app}}, **spec})
    return applied_policy(Scope.NAMESPACED, name, "team", generation, parsed)


def pod(name: str, app: str, annotations: dict[str, str] | None = None, **ports: int) -> PodView:
    return PodView(name, {"app": app, **OPTED_IN}, annotations or {}, ports)


def test_pods_selected_by_the_same_policies_share_one_config_file() -> None:
    plan = plan_namespace({}, [policy("chat", "chat")], [pod("a", "chat"), pod("b", "chat")], {})
    keys = {plan.pod_annotations[name][CONFIG_KEY_ANNOTATION] for name in ("a", "b")}
    assert len(keys) == 1
    config = parse_config(plan.data[keys.pop()])
    assert [ref.name for ref in config.policies] == ["chat"]


def test_a_pod_selected_by_two_policies_gets_their_merged_config() -> None:
    policies = [
        policy("strict", "chat", boundaries={"maxRequestBytes": 100}),
        policy("loose", "chat", boundaries={"maxRequestBytes": 10_000}),
    ]
    plan = plan_namespace({}, policies, [pod("a", "chat")], {})
    config = parse_config(plan.data[plan.pod_annotations["a"][CONFIG_KEY_ANNOTATION]])
    assert config.boundaries.max_request_bytes == 100
    assert sorted(ref.name for ref in config.policies) == ["loose", "strict"]


def test_a_new_pod_reads_the_key_the_webhook_computes_from_its_labels() -> None:
    new = pod("a", "chat")
    plan = plan_namespace({}, [policy("chat", "chat")], [new], {})
    assert plan.pod_annotations["a"][CONFIG_KEY_ANNOTATION] == config_key_for(new.labels)


def test_a_pods_key_never_changes_once_given() -> None:
    given = pod("a", "chat", {CONFIG_KEY_ANNOTATION: "pod-0123456789abcdef.json"})
    plan = plan_namespace({}, [policy("chat", "chat")], [given], {})
    assert plan.pod_annotations["a"][CONFIG_KEY_ANNOTATION] == "pod-0123456789abcdef.json"
    assert "pod-0123456789abcdef.json" in plan.data


def test_pods_without_the_opt_in_label_are_left_alone() -> None:
    outsider = PodView("x", {"app": "chat"}, {}, {})
    plan = plan_namespace({}, [policy("chat", "chat")], [outsider], {})
    assert "x" not in plan.pod_annotations
    assert plan.matched[policy("chat", "chat").key] == 0


def test_the_namespace_label_opts_every_pod_in() -> None:
    plain = PodView("x", {"app": "chat"}, {}, {})
    plan = plan_namespace(OPTED_IN, [policy("chat", "chat")], [plain], {})
    assert CONFIG_KEY_ANNOTATION in plan.pod_annotations["x"]


def test_the_opt_out_annotation_wins_over_the_namespace_label() -> None:
    opted_out = PodView("x", {"app": "chat"}, {"execguard.io/inject": "disabled"}, {})
    plan = plan_namespace(OPTED_IN, [policy("chat", "chat")], [opted_out], {})
    assert "x" not in plan.pod_annotations


def test_a_pod_whose_last_policy_is_gone_reads_a_pass_through_config_on_its_port() -> None:
    before = plan_namespace(
        {}, [policy("chat", "chat", upstream={"port": 9000})], [pod("a", "chat")], {}
    )
    annotated = pod("a", "chat", before.pod_annotations["a"])
    after = plan_namespace({}, [], [annotated], before.data)
    key = after.pod_annotations["a"][CONFIG_KEY_ANNOTATION]
    assert key == before.pod_annotations["a"][CONFIG_KEY_ANNOTATION]
    config = parse_config(after.data[key])
    assert config.policies == []
    assert config.upstream.port == 9000
    assert config.enforcement_action == "dryrun"


def test_a_named_upstream_port_is_resolved_from_the_pods_containers() -> None:
    plan = plan_namespace(
        {}, [policy("chat", "chat", upstream={"port": "http"})], [pod("a", "chat", http=7000)], {}
    )
    assert plan.pod_annotations["a"][UPSTREAM_PORT_ANNOTATION] == "7000"


def test_an_unknown_port_name_is_reported_on_the_policy() -> None:
    chat = policy("chat", "chat", upstream={"port": "grpc"})
    plan = plan_namespace({}, [chat], [pod("a", "chat")], {})
    assert any("no container port named 'grpc'" in p for p in plan.problems[chat.key])


def test_the_generation_of_a_config_file_moves_only_when_its_content_changes() -> None:
    first = plan_namespace({}, [policy("chat", "chat")], [pod("a", "chat")], {})
    key = first.pod_annotations["a"][CONFIG_KEY_ANNOTATION]
    same = plan_namespace({}, [policy("chat", "chat")], [pod("a", "chat")], first.data)
    changed = plan_namespace(
        {},
        [policy("chat", "chat", generation=2, enforcementAction="warn")],
        [pod("a", "chat")],
        first.data,
    )
    assert parse_config(same.data[key]).generation == parse_config(first.data[key]).generation
    assert (
        parse_config(changed.data[key]).generation == parse_config(first.data[key]).generation + 1
    )


def test_each_policys_last_valid_spec_is_kept_and_can_be_read_back() -> None:
    chat = policy("chat", "chat", generation=4, enforcementAction="warn")
    plan = plan_namespace({}, [chat], [], {})
    assert stored_key(chat.key) in plan.data
    restored = stored_policies(plan.data)[chat.key]
    assert restored.generation == 4
    assert restored.spec == chat.spec


def test_a_namespace_without_policies_or_configured_pods_needs_no_configmap() -> None:
    assert plan_namespace({}, [], [pod("a", "chat")], {}).data == {}


def test_only_pods_whose_annotations_differ_are_patched() -> None:
    plan = plan_namespace({}, [policy("chat", "chat")], [pod("a", "chat")], {})
    current = pod("a", "chat", plan.pod_annotations["a"])
    assert plan.changed_pods([current]) == {}
    assert plan.changed_pods([pod("a", "chat")]) == {"a": plan.pod_annotations["a"]}


def test_a_pod_event_asks_for_a_render_only_when_the_labels_changed() -> None:
    plan = plan_namespace({}, [policy("chat", "chat")], [pod("a", "chat")], {})
    rendered = pod("a", "chat", plan.pod_annotations["a"])
    assert not needs_render(rendered, {})
    relabelled = PodView("a", {"app": "other", **OPTED_IN}, rendered.annotations, {})
    assert needs_render(relabelled, {})
    assert LABELS_HASH_ANNOTATION in plan.pod_annotations["a"]
