"""The pure mutation: which pods get the sidecar, what the patch adds, and idempotence."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
from webhook_builders import NAMESPACE, cluster_policy, model_pod, policy

from execguard.operator.rendering.configmap import CONFIG_KEY_ANNOTATION, plan_namespace
from execguard.operator.webhook.injection import InjectionSpec
from execguard.operator.webhook.mutation import (
    INJECTED_BY_ANNOTATION,
    POLICY_HASH_ANNOTATION,
    SKIPPED_ANNOTATION,
    mutate,
)
from execguard.operator.webhook.patches import apply_patch
from execguard.operator.webhook.selection import Deny, Inject, Skip, pod_view
from execguard.operator.webhook.settings import WebhookSettings


def injected(pod: Any, spec: InjectionSpec, policies: Any = None, ns_labels: Any = None) -> Any:
    mutation = mutate(pod, NAMESPACE, ns_labels or {}, policies or [policy()], spec)
    return apply_patch(pod, mutation.patch)


def init_container(pod: Any, name: str) -> Any:
    return next(c for c in pod["spec"]["initContainers"] if c["name"] == name)


def test_selected_opted_in_pod_gets_a_native_sidecar(spec):
    pod = injected(model_pod(), spec)
    sidecar = init_container(pod, "execguard-sidecar")
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == spec.sidecar_image
    assert [c["name"] for c in pod["spec"]["containers"]] == ["model"]


def test_sidecar_takes_over_the_model_port_name_so_named_target_ports_reach_it(spec):
    pod = injected(model_pod(), spec)
    sidecar = init_container(pod, "execguard-sidecar")
    assert {"name": "http", "containerPort": spec.sidecar_port, "protocol": "TCP"} in sidecar[
        "ports"
    ]
    assert pod["spec"]["containers"][0]["ports"][0] == {
        "name": "http-model",
        "containerPort": 8000,
        "protocol": "TCP",
    }
    assert "--upstream-port" in sidecar["args"]
    assert sidecar["args"][sidecar["args"].index("--upstream-port") + 1] == "8000"


def test_sidecar_runs_with_the_restricted_profile(spec):
    context = init_container(injected(model_pod(), spec), "execguard-sidecar")["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_sidecar_has_resources_probes_config_and_downward_api(spec):
    pod = injected(model_pod(), spec)
    sidecar = init_container(pod, "execguard-sidecar")
    assert sidecar["resources"]["limits"]["memory"] == "256Mi"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["execguard-config"]["configMap"]["name"] == "execguard-sidecar-config"
    paths = {item["path"] for item in volumes["execguard-podinfo"]["downwardAPI"]["items"]}
    assert {"name", "namespace", "labels"} <= paths


def test_config_key_is_the_one_the_operator_plans_for_the_pod(spec):
    pod = injected(model_pod(), spec)
    plan = plan_namespace({}, [policy()], [pod_view(model_pod())], {})
    key = plan.pod_annotations["model-0"][CONFIG_KEY_ANNOTATION]
    assert pod["metadata"]["annotations"][CONFIG_KEY_ANNOTATION] == key
    assert key in plan.data
    args = init_container(pod, "execguard-sidecar")["args"]
    assert args[args.index("--config-key") + 1] == key


def test_annotations_record_policies_generation_and_hash(spec):
    pod = injected(model_pod(), spec, [policy("chat", generation=7)])
    annotations = pod["metadata"]["annotations"]
    assert annotations[INJECTED_BY_ANNOTATION] == "xp.chat@7"
    other = injected(model_pod(), spec, [policy("chat", generation=8)])
    assert (
        other["metadata"]["annotations"][POLICY_HASH_ANNOTATION]
        != annotations[POLICY_HASH_ANNOTATION]
    )


def test_opa_engine_adds_an_opa_container_on_localhost(spec):
    pod = injected(model_pod(), spec, [policy(engine="opa")])
    opa = init_container(pod, "execguard-opa")
    assert opa["image"].startswith("openpolicyagent/opa:")
    assert ":latest" not in opa["image"]
    assert f"--addr=127.0.0.1:{spec.opa_port}" in opa["args"]
    names = [c["name"] for c in pod["spec"]["initContainers"]]
    assert names.index("execguard-opa") < names.index("execguard-sidecar")


def test_pod_without_opt_in_label_is_not_injected(spec):
    pod = model_pod(metadata__labels={"app": "model"})
    mutation = mutate(pod, NAMESPACE, {}, [policy()], spec)
    assert mutation.patch == []
    assert isinstance(mutation.decision, Skip)


def test_namespace_opt_in_label_is_enough(spec):
    pod = model_pod(metadata__labels={"app": "model"})
    mutation = mutate(pod, NAMESPACE, {"execguard.io/inject": "enabled"}, [policy()], spec)
    assert isinstance(mutation.decision, Inject)


def test_opt_out_annotation_wins_over_opt_in(spec):
    pod = model_pod(metadata__annotations={"execguard.io/inject": "disabled"})
    assert mutate(pod, NAMESPACE, {}, [policy()], spec).patch == []


def test_opt_out_is_refused_where_the_namespace_forbids_it(spec):
    pod = model_pod(metadata__annotations={"execguard.io/inject": "disabled"})
    labels = {"execguard.io/allow-opt-out": "false"}
    decision = mutate(pod, NAMESPACE, labels, [policy()], spec).decision
    assert isinstance(decision, Deny)
    assert "does not allow opting out" in decision.message


def test_pod_no_policy_selects_is_untouched(spec):
    pod = model_pod(metadata__labels={"app": "other", "execguard.io/inject": "enabled"})
    assert mutate(pod, NAMESPACE, {}, [policy()], spec).patch == []


def test_cluster_policy_applies_only_in_matching_namespaces(spec):
    platform = cluster_policy("platform", {"tier": "ai"})
    assert isinstance(
        mutate(model_pod(), NAMESPACE, {"tier": "ai"}, [platform], spec).decision, Inject
    )
    assert mutate(model_pod(), NAMESPACE, {"tier": "web"}, [platform], spec).patch == []


def test_excluded_namespaces_are_never_injected(spec):
    for namespace in ("kube-system", "kube-public", "kube-node-lease", "execguard-system"):
        assert mutate(model_pod(), namespace, {}, [policy()], spec).patch == []


def test_mirror_pods_are_not_injected(spec):
    pod = model_pod(metadata__annotations={"kubernetes.io/config.mirror": "abc"})
    assert mutate(pod, NAMESPACE, {}, [policy()], spec).patch == []


def test_host_network_pod_is_refused_injection_with_a_reason_and_a_warning(spec):
    pod = model_pod(spec__hostNetwork=True)
    mutation = mutate(pod, NAMESPACE, {}, [policy()], spec)
    patched = apply_patch(pod, mutation.patch)
    assert "hostNetwork" in patched["metadata"]["annotations"][SKIPPED_ANNOTATION]
    assert "initContainers" not in patched["spec"]
    assert mutation.warnings
    assert "not injected" in mutation.warnings[0]


def test_named_upstream_port_that_no_container_has_is_refused_with_a_reason(spec):
    mutation = mutate(model_pod(), NAMESPACE, {}, [policy(upstream={"port": "grpc"})], spec)
    assert isinstance(mutation.decision, Skip)
    assert "no container has a port named 'grpc'" in mutation.decision.reason
    assert mutation.patch[0]["path"] == "/metadata/annotations"


def test_numeric_upstream_port_not_declared_is_injected_with_a_warning(spec):
    mutation = mutate(model_pod(), NAMESPACE, {}, [policy(upstream={"port": 9000})], spec)
    assert isinstance(mutation.decision, Inject)
    assert mutation.decision.sidecar_port_name == "execguard"
    assert any("no container declares port 9000" in w for w in mutation.warnings)


def test_taken_rename_target_picks_another_free_name(spec):
    ports = [
        {"name": "http", "containerPort": 8000},
        {"name": "http-model", "containerPort": 8001},
    ]
    pod = injected(
        model_pod(spec__containers=[{"name": "model", "image": "m", "ports": ports}]), spec
    )
    names = [p["name"] for p in pod["spec"]["containers"][0]["ports"]]
    assert names == ["http-mdl", "http-model"]


def test_long_port_name_is_shortened_to_a_valid_name(spec):
    ports = [{"name": "openai-chat-api", "containerPort": 8000}]
    pod = model_pod(spec__containers=[{"name": "model", "image": "m", "ports": ports}])
    mutation = mutate(pod, NAMESPACE, {}, [policy(upstream={"port": "openai-chat-api"})], spec)
    assert isinstance(mutation.decision, Inject)
    assert mutation.decision.rename is not None
    new = mutation.decision.rename.new_model_port_name
    assert len(new) <= 15
    assert new.endswith("-model")


def test_sidecar_port_already_used_by_the_pod_is_refused(spec):
    ports = [{"name": "http", "containerPort": 8000}, {"containerPort": spec.sidecar_port}]
    pod = model_pod(spec__containers=[{"name": "model", "image": "m", "ports": ports}])
    decision = mutate(pod, NAMESPACE, {}, [policy()], spec).decision
    assert isinstance(decision, Skip)
    assert f"already uses port {spec.sidecar_port}" in decision.reason


def test_existing_init_containers_and_volumes_are_kept(spec):
    pod = model_pod(
        spec__initContainers=[{"name": "fetch-weights", "image": "busybox"}],
        spec__volumes=[{"name": "weights", "emptyDir": {}}],
    )
    patched = injected(pod, spec)
    assert [c["name"] for c in patched["spec"]["initContainers"]] == [
        "fetch-weights",
        "execguard-sidecar",
    ]
    assert patched["spec"]["volumes"][0]["name"] == "weights"


def test_patch_only_adds_and_renames(spec):
    mutation = mutate(
        model_pod(metadata__annotations={"team": "a"}), NAMESPACE, {}, [policy()], spec
    )
    assert {op["op"] for op in mutation.patch} <= {"add", "replace"}
    replaced = [op["path"] for op in mutation.patch if op["op"] == "replace"]
    assert replaced == ["/spec/containers/0/ports/0/name"]


def test_injected_pod_fed_back_gives_an_empty_patch(spec):
    pod = injected(model_pod(), spec)
    assert mutate(pod, NAMESPACE, {}, [policy()], spec).patch == []


# --- property: the mutation applied to its own output changes nothing --------------------

label_values = st.sampled_from(["model", "other"])
port_names = st.sampled_from(["http", "web", "openai-chat-api", "http-model", "grpc", None])


@st.composite
def pods(draw: st.DrawFn) -> Any:
    containers = []
    used: set[str] = set()
    for index in range(draw(st.integers(1, 3))):
        ports = []
        for number in draw(
            st.lists(st.sampled_from([8000, 8001, 8443, 9090, 9000]), max_size=3, unique=True)
        ):
            port: dict[str, Any] = {"containerPort": number}
            name = draw(port_names)
            if name is not None and name not in used:  # names are unique within a pod
                port["name"] = name
                used.add(name)
            ports.append(port)
        containers.append({"name": f"c{index}", "image": "img", "ports": ports})
    pod: dict[str, Any] = {
        "metadata": {"name": "p"},
        "spec": {"containers": containers},
    }
    labels = {"app": draw(label_values)}
    if draw(st.booleans()):
        labels["execguard.io/inject"] = "enabled"
    pod["metadata"]["labels"] = labels
    annotations = draw(
        st.dictionaries(
            st.sampled_from(["execguard.io/inject", "x/y", "a~b"]),
            st.sampled_from(["disabled", "enabled", "v"]),
            max_size=2,
        )
    )
    if annotations or draw(st.booleans()):
        pod["metadata"]["annotations"] = annotations
    if draw(st.booleans()):
        pod["spec"]["initContainers"] = [{"name": "init", "image": "img"}]
    if draw(st.booleans()):
        pod["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
    if draw(st.integers(0, 9)) == 0:
        pod["spec"]["hostNetwork"] = True
    return pod


policy_sets = st.lists(
    st.sampled_from(
        [
            policy("a"),
            policy("b", upstream={"port": "http"}),
            policy("c", upstream={"port": 8001}, engine="opa"),
            policy("d", upstream={"port": "grpc"}),
            policy("e", labels={"app": "other"}, upstream={"port": "web"}),
            cluster_policy("f", {"tier": "ai"}),
        ]
    ),
    max_size=3,
    unique_by=lambda p: p.key,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pod=pods(), policies=policy_sets, ns_labels=st.sampled_from([{}, {"tier": "ai"}]))
def test_mutation_of_its_own_output_is_an_empty_patch(pod, policies, ns_labels):
    spec = WebhookSettings().injection()
    first = mutate(pod, NAMESPACE, ns_labels, policies, spec)
    once = apply_patch(pod, first.patch)
    second = mutate(once, NAMESPACE, ns_labels, policies, spec)
    assert second.patch == []
    if isinstance(first.decision, Inject):
        init = [c["name"] for c in once["spec"]["initContainers"]]
        assert init.count("execguard-sidecar") == 1
        all_names = [
            p["name"]
            for c in [*once["spec"]["containers"], *once["spec"]["initContainers"]]
            for p in c.get("ports", [])
            if "name" in p
        ]
        assert len(all_names) == len(set(all_names)), "port names stay unique"


def test_model_probes_on_the_renamed_port_follow_the_rename(spec):
    model = {
        "name": "model",
        "image": "m",
        "ports": [{"name": "http", "containerPort": 8000}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
        "livenessProbe": {"tcpSocket": {"port": "http"}},
        "startupProbe": {"httpGet": {"path": "/healthz", "port": 8000}},
    }
    patched = injected(model_pod(spec__containers=[model]), spec)
    container = patched["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["port"] == "http-model"
    assert container["livenessProbe"]["tcpSocket"]["port"] == "http-model"
    assert container["startupProbe"]["httpGet"]["port"] == 8000
