"""The operator, run as a real process against the real apiserver, reconciles the resources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from execguard.devkit.controlplane.cluster import free_port
from execguard.devkit.stack import SYSTEM_NAMESPACE as LEASE_NAMESPACE, install_crds
from execguard.devkit.waiting import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"
EXAMPLES = REPO / "examples" / "resources"
CONFIGMAP = "execguard-sidecar-config"

GOOD_REGO = """package execguard.request

import rego.v1

deny contains "model x is not allowed" if {
  input.request.body.model == "x"
}
"""
SYNTAX_ERROR = "package execguard.request\n\ndeny contains msg if {\n  input.x == \n}\n"
UNDEFINED = (
    "package execguard.request\n\nimport rego.v1\n\n"
    'deny contains "x" if {\n  undefined_function(input.x)\n}\n'
)


class OperatorProcess:
    """`execguard operator` as a subprocess with its own log file."""

    def __init__(self, cluster: Any, log: Path, identity: str, lease_name: str) -> None:
        self.metrics_port = free_port()
        self.identity = identity
        self.log = log
        environment = {
            **os.environ,
            "EXECGUARD_OPERATOR_LEASE_NAME": lease_name,
            "EXECGUARD_OPERATOR_LEASE_DURATION_SECONDS": "6",
            "EXECGUARD_OPERATOR_RENEW_INTERVAL_SECONDS": "2",
            "EXECGUARD_OPERATOR_RETRY_INTERVAL_SECONDS": "1",
        }
        opa = cluster.bin_dir / "opa"
        command = [
            sys.executable,
            "-m",
            "execguard.cli.main",
            "operator",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--metrics-port",
            str(self.metrics_port),
            "--health-port",
            "0",
            "--identity",
            identity,
            "--lease-namespace",
            LEASE_NAMESPACE,
        ]
        if opa.exists():
            command += ["--opa", str(opa)]
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            command, stdout=self._log_file, stderr=subprocess.STDOUT, env=environment
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())


def lease_holder(cluster: Any, lease_name: str) -> str | None:
    result = cluster.kubectl(
        "get", "lease", lease_name, "-n", LEASE_NAMESPACE, "-o", "json", check=False
    )
    if result.returncode != 0:
        return None
    holder = json.loads(result.stdout)["spec"].get("holderIdentity")
    return str(holder) if holder else None


def get_json(cluster: Any, *args: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for entry in ((obj or {}).get("status") or {}).get("conditions", []):
        if entry["type"] == kind:
            return dict(entry)
    return None


def apply(cluster: Any, document: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(document))


def execution_policy(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "execguard.io/v1alpha1",
        "kind": "ExecutionPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": name}}, **spec},
    }


def model_pod(name: str, namespace: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": app, "execguard.io/inject": "enabled"},
        },
        "spec": {
            "containers": [
                {
                    "name": "model",
                    "image": "model-server:test",
                    "ports": [{"name": "http", "containerPort": 8000}],
                }
            ]
        },
    }


def wait_ready(cluster: Any, resource: str, namespace: str | None, generation: int = 1) -> Any:
    args = [resource] + (["-n", namespace] if namespace else [])

    def ready() -> dict[str, Any] | None:
        obj = get_json(cluster, *args)
        entry = condition(obj, "Ready")
        if (
            obj
            and entry
            and entry["status"] == "True"
            and entry["observedGeneration"] >= generation
        ):
            return obj
        return None

    return wait_for(f"{resource} Ready at generation {generation}", ready)


def pod_config(cluster: Any, namespace: str, pod: str) -> dict[str, Any] | None:
    """The sidecar config document the pod is told to read, if any."""
    pod_obj = get_json(cluster, "pod", pod, "-n", namespace)
    configmap = get_json(cluster, "configmap", CONFIGMAP, "-n", namespace)
    if not pod_obj or not configmap:
        return None
    key = pod_obj["metadata"].get("annotations", {}).get("execguard.io/config-key")
    text = configmap.get("data", {}).get(key or "")
    return json.loads(text) if text else None


@pytest.fixture(scope="module")
def cluster(control_plane: Any) -> Any:
    install_crds(control_plane)
    return control_plane


@pytest.fixture(scope="module")
def operator(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    lease = f"reconcile-{uuid.uuid4().hex[:6]}"
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(cluster, log, "reconciler", lease)
    try:
        wait_for("the operator to lead", lambda: lease_holder(cluster, lease) == "reconciler")
        yield process
    finally:
        process.stop()
        print(log.read_text()[-5000:])


@pytest.fixture
def namespace(cluster: Any, operator: OperatorProcess) -> Iterator[str]:
    name = f"op-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, "team-tier=inference")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_every_example_becomes_ready(cluster: Any, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES))
    for example in sorted(EXAMPLES.glob("*.yaml")):
        document = json.loads(
            cluster.kubectl("create", "--dry-run=client", "-o", "json", "-f", str(example)).stdout
        )
        kind = document["kind"].lower()
        name = document["metadata"]["name"]
        cluster_scoped = kind == "clusterexecutionpolicy"
        wait_ready(cluster, f"{kind}/{name}", None if cluster_scoped else namespace)
    baseline = get_json(cluster, "xdb/invoice-extractor", "-n", namespace)
    assert baseline is not None
    assert baseline["status"]["phase"] == "Active"
    capturing = get_json(cluster, "xdb/chat-assistant", "-n", namespace)
    assert capturing is not None
    assert capturing["status"]["phase"] == "Capturing"
    table = cluster.kubectl("get", "xp", "chat-assistant", "-n", namespace).stdout.split()
    assert table[:6] == ["NAME", "ENFORCEMENT", "READY", "MATCHED", "VIOLATIONS", "AGE"]
    assert table[6:9] == ["chat-assistant", "enforce", "True"]
    cluster.kubectl("delete", "-f", str(EXAMPLES / "clusterexecutionpolicy-platform-baseline.yaml"))


def test_a_matched_pod_gets_a_config_and_an_update_follows(cluster: Any, namespace: str) -> None:
    apply(cluster, execution_policy("chat", namespace, boundaries={"maxRequestBytes": 1000}))
    apply(cluster, model_pod("chat-0", namespace, "chat"))
    wait_ready(cluster, "xp/chat", namespace)
    config = wait_for("the pod's config", lambda: pod_config(cluster, namespace, "chat-0"))
    assert config["boundaries"]["maxRequestBytes"] == 1000
    assert [ref["name"] for ref in config["policies"]] == ["chat"]

    cluster.kubectl(
        "patch", "xp", "chat", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"boundaries": {"maxRequestBytes": 2000}}}),
    )  # fmt: skip
    updated = wait_ready(cluster, "xp/chat", namespace, generation=2)
    assert updated["status"]["observedGeneration"] == 2
    assert updated["status"]["matchedPods"] == 1
    config = wait_for(
        "the config to change",
        lambda: (c := pod_config(cluster, namespace, "chat-0")) and c["generation"] > 1 and c,
    )
    assert config["boundaries"]["maxRequestBytes"] == 2000
    configmap = get_json(cluster, "configmap", CONFIGMAP, "-n", namespace)
    assert configmap is not None
    owners = configmap["metadata"]["ownerReferences"]
    assert [(owner["kind"], owner["name"]) for owner in owners] == [("ExecutionPolicy", "chat")]


DEEP_INVALID = [
    pytest.param(
        {
            "request": {
                "policies": [
                    {
                        "name": "broken",
                        "rego": SYNTAX_ERROR,
                    }
                ]
            }
        },
        "spec.validation.request.policies[broken].rego: module 'broken' line 5: ",
        id="rego-syntax-error",
    ),
    pytest.param(
        {
            "request": {
                "policies": [
                    {
                        "name": "undefined",
                        "rego": UNDEFINED,
                    }
                ]
            }
        },
        "spec.validation.request.policies[undefined].rego: module 'undefined' line 6: "
        "undefined function undefined_function",
        id="undefined-reference",
    ),
    pytest.param(
        {"response": {"redaction": [{"name": "r", "pattern": "(unclosed"}]}},
        "spec.validation.response.redaction[r].pattern: does not compile: "
        "missing ), unterminated subpattern at position 0",
        id="invalid-regex",
    ),
    pytest.param(
        {"response": {"jsonSchema": {"type": "objekt"}}},
        "spec.validation.response.jsonSchema: not a valid JSON Schema at /type",
        id="invalid-json-schema",
    ),
]


@pytest.mark.parametrize(("validation", "message"), DEEP_INVALID)
def test_a_deeply_invalid_update_is_reported_and_the_good_config_stays(
    cluster: Any, namespace: str, validation: dict[str, Any], message: str
) -> None:
    good = {"request": {"policies": [{"name": "good", "rego": GOOD_REGO}]}}
    apply(cluster, execution_policy("chat", namespace, validation=good))
    apply(cluster, model_pod("chat-0", namespace, "chat"))
    wait_ready(cluster, "xp/chat", namespace)
    before = wait_for("the pod's config", lambda: pod_config(cluster, namespace, "chat-0"))

    apply(cluster, execution_policy("chat", namespace, validation=validation))

    def invalid() -> dict[str, Any] | None:
        entry = condition(get_json(cluster, "xp/chat", "-n", namespace), "Invalid")
        return entry if entry and entry["status"] == "True" else None

    entry = wait_for("the Invalid condition", invalid)
    assert entry["message"].startswith(message), entry["message"]
    status = get_json(cluster, "xp/chat", "-n", namespace)
    assert status is not None
    assert status["status"]["observedGeneration"] == 2
    assert status["status"]["lastGoodGeneration"] == 1
    ready = condition(status, "Ready")
    assert ready is not None
    assert ready["status"] == "False"
    assert pod_config(cluster, namespace, "chat-0") == before
    events = cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=chat",
        "-o", "jsonpath={.items[*].reason}",
    ).stdout  # fmt: skip
    assert "Invalid" in events.split()


def test_a_new_invalid_policy_renders_nothing(cluster: Any, namespace: str) -> None:
    bad = DEEP_INVALID[0].values[0]
    apply(cluster, execution_policy("fresh", namespace, validation=bad))
    apply(cluster, model_pod("fresh-0", namespace, "fresh"))
    wait_for(
        "the Invalid condition",
        lambda: (
            (c := condition(get_json(cluster, "xp/fresh", "-n", namespace), "Invalid"))
            and c["status"] == "True"
        ),
    )
    ready = condition(get_json(cluster, "xp/fresh", "-n", namespace), "Ready")
    assert ready is not None
    assert "no generation of this policy is in effect" in ready["message"]
    assert pod_config(cluster, namespace, "fresh-0") is None


def test_deleting_the_last_policy_leaves_pods_a_pass_through_config(
    cluster: Any, namespace: str
) -> None:
    apply(cluster, execution_policy("chat", namespace))
    apply(cluster, model_pod("chat-0", namespace, "chat"))
    wait_ready(cluster, "xp/chat", namespace)
    wait_for("the pod's config", lambda: pod_config(cluster, namespace, "chat-0"))
    cluster.kubectl("delete", "xp", "chat", "-n", namespace, "--timeout=60s")
    config = wait_for(
        "the pass-through config",
        lambda: (c := pod_config(cluster, namespace, "chat-0")) and not c["policies"] and c,
    )
    assert config["upstream"]["protocol"] == "passthrough"
    assert config["enforcementAction"] == "dryrun"
    configmap = get_json(cluster, "configmap", CONFIGMAP, "-n", namespace)
    assert configmap is not None
    assert not [key for key in configmap["data"] if key.startswith("policy.")]


def test_deleting_a_policy_without_pods_removes_its_configmap(cluster: Any, namespace: str) -> None:
    apply(cluster, execution_policy("lonely", namespace))
    wait_ready(cluster, "xp/lonely", namespace)
    assert get_json(cluster, "configmap", CONFIGMAP, "-n", namespace) is not None
    cluster.kubectl("delete", "xp", "lonely", "-n", namespace, "--timeout=60s")
    wait_for(
        "the ConfigMap to go",
        lambda: get_json(cluster, "configmap", CONFIGMAP, "-n", namespace) is None,
    )


def test_a_cluster_policy_applies_in_selected_namespaces_only(cluster: Any, namespace: str) -> None:
    name = f"floor-{uuid.uuid4().hex[:6]}"
    other = f"op-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", other)
    try:
        apply(
            cluster,
            {
                "apiVersion": "execguard.io/v1alpha1",
                "kind": "ClusterExecutionPolicy",
                "metadata": {"name": name},
                "spec": {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    },
                    "boundaries": {"maxConcurrentRequests": 3},
                },
            },
        )
        apply(
            cluster, execution_policy("chat", namespace, boundaries={"maxConcurrentRequests": 10})
        )
        apply(cluster, model_pod("chat-0", namespace, "chat"))
        apply(cluster, model_pod("chat-0", other, "chat"))
        wait_ready(cluster, f"cxp/{name}", None)
        wait_ready(cluster, "xp/chat", namespace)
        config = wait_for(
            "the merged config",
            lambda: (
                (c := pod_config(cluster, namespace, "chat-0")) and len(c["policies"]) == 2 and c
            ),
        )
        assert config["boundaries"]["maxConcurrentRequests"] == 3
        assert get_json(cluster, "configmap", CONFIGMAP, "-n", other) is None
    finally:
        cluster.kubectl("delete", "cxp", name, "--timeout=60s", check=False)
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_reconciles_are_counted_in_the_metrics(operator: OperatorProcess, namespace: str) -> None:
    text = operator.metrics()
    assert "execguard_operator_reconciles_total{" in text
    assert "execguard_operator_leader 1.0" in text
    assert "execguard_operator_reconcile_duration_seconds_bucket" in text
