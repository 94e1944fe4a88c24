"""The CRDs refuse malformed objects at `kubectl apply` naming the field; examples pass."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"
EXAMPLES = REPO / "examples" / "resources"
API_VERSION = "execguard.io/v1alpha1"
SELECTOR = {"matchLabels": {"app": "model"}}


def install_crds(control_plane: Any) -> None:
    """Apply every CRD and wait until the apiserver serves them."""
    control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD_DIR)
    )
    # Discovery (short names, categories) lags Established by a moment.
    for _ in range(60):
        if control_plane.kubectl("get", "xp", "-A", check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("executionpolicies are not served")


@pytest.fixture(scope="module")
def cluster(control_plane: Any) -> Any:
    install_crds(control_plane)
    return control_plane


@pytest.fixture(scope="module")
def namespace(cluster: Any) -> Iterator[str]:
    name = f"crd-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _object(kind: str, spec: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": f"bad-{uuid.uuid4().hex[:8]}"}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def _policy(**spec: Any) -> dict[str, Any]:
    return {"selector": SELECTOR, **spec}


def _baseline(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "targetRef": {"kind": "Deployment", "name": "model"},
        "features": [{"name": "length", "type": "responseLength"}],
        "reference": {"capture": {"requests": 100}},
    }
    spec.update(overrides)
    return spec


XP, CXP, XDB = "ExecutionPolicy", "ClusterExecutionPolicy", "DriftBaseline"

# (id, kind, spec, a fragment of the refusal that names the field)
BAD_OBJECTS: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "wrong-type-size",
        XP,
        _policy(boundaries={"maxRequestBytes": "large"}),
        "spec.boundaries.maxRequestBytes",
    ),
    (
        "negative-size",
        XP,
        _policy(boundaries={"maxRequestBytes": -1}),
        "spec.boundaries.maxRequestBytes",
    ),
    (
        "zero-concurrency",
        XP,
        _policy(boundaries={"maxConcurrentRequests": 0}),
        "spec.boundaries.maxConcurrentRequests",
    ),
    ("unknown-enforcement", XP, _policy(enforcementAction="block"), "spec.enforcementAction"),
    ("unknown-engine", XP, _policy(engine="wasm"), "spec.engine"),
    ("empty-selector", XP, {"selector": {}}, "spec.selector: Invalid value"),
    ("missing-selector", XP, {"enforcementAction": "warn"}, "spec.selector: Required"),
    (
        "selector-in-without-values",
        XP,
        {"selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
        "spec.selector.matchExpressions[0]",
    ),
    (
        "burst-below-rate",
        XP,
        _policy(boundaries={"rateLimit": {"requestsPerSecond": 10, "burst": 5}}),
        "spec.boundaries.rateLimit.burst",
    ),
    (
        "zero-rate",
        XP,
        _policy(boundaries={"rateLimit": {"requestsPerSecond": 0}}),
        "spec.boundaries.rateLimit.requestsPerSecond",
    ),
    (
        "header-key-without-header",
        XP,
        _policy(boundaries={"rateLimit": {"requestsPerSecond": 1, "key": {"kind": "header"}}}),
        "spec.boundaries.rateLimit.key",
    ),
    (
        "duplicate-allowed-model",
        XP,
        _policy(boundaries={"allowedModels": ["a", "a"]}),
        "spec.boundaries.allowedModels[1]",
    ),
    (
        "session-without-limits",
        XP,
        _policy(boundaries={"sessions": {"header": "x-session-id"}}),
        "spec.boundaries.sessions",
    ),
    ("port-out-of-range", XP, _policy(upstream={"port": 0}), "spec.upstream.port"),
    ("port-bad-name", XP, _policy(upstream={"port": "Not_A_Name"}), "spec.upstream.port"),
    (
        "rate-threshold-above-one",
        XP,
        _policy(thresholds=[{"name": "v", "signal": "violationRate", "max": 1.5}]),
        "spec.thresholds[0].max",
    ),
    (
        "latency-without-quantile",
        XP,
        _policy(thresholds=[{"name": "l", "signal": "latency", "max": 500}]),
        "spec.thresholds[0].quantile",
    ),
    (
        "min-samples-zero",
        XP,
        _policy(thresholds=[{"name": "e", "signal": "errorRate", "max": 0.1, "minSamples": 0}]),
        "spec.thresholds[0].minSamples",
    ),
    (
        "json-schema-not-an-object",
        XP,
        _policy(validation={"response": {"jsonSchema": "type: object"}}),
        "spec.validation.response.jsonSchema",
    ),
    (
        "rego-over-size-limit",
        XP,
        _policy(
            validation={
                "request": {
                    "policies": [
                        {"name": "huge", "rego": "package execguard.request\n" + "#" * 65_536}
                    ]
                }
            }
        ),
        "spec.validation.request.policies[0].rego",
    ),
    (
        "rego-module-bad-name",
        XP,
        _policy(
            validation={
                "request": {"policies": [{"name": "Bad Name", "rego": "package execguard.request"}]}
            }
        ),
        "spec.validation.request.policies[0].name",
    ),
    (
        "module-name-in-both-phases",
        XP,
        _policy(
            validation={
                "request": {"policies": [{"name": "m", "rego": "package execguard.request"}]},
                "response": {"policies": [{"name": "m", "rego": "package execguard.response"}]},
            }
        ),
        "spec.validation",
    ),
    (
        "reask-without-max-reasks",
        XP,
        _policy(validation={"response": {"onFailure": "reask"}}),
        "spec.validation.response.maxReasks",
    ),
    (
        "max-reasks-above-bound",
        XP,
        _policy(validation={"response": {"onFailure": "reask", "maxReasks": 9}}),
        "spec.validation.response.maxReasks",
    ),
    (
        "redact-without-rules",
        XP,
        _policy(validation={"response": {"onFailure": "redact"}}),
        "spec.validation.response.redaction",
    ),
    (
        "unknown-on-failure",
        XP,
        _policy(validation={"response": {"onFailure": "retry"}}),
        "spec.validation.response.onFailure",
    ),
    ("unknown-field", XP, _policy(bogus=True), 'unknown field "spec.bogus"'),
    ("cluster-empty-namespace-selector", CXP, {"namespaceSelector": {}}, "spec.namespaceSelector"),
    (
        "cluster-missing-namespace-selector",
        CXP,
        {"selector": SELECTOR},
        "spec.namespaceSelector: Required",
    ),
    (
        "rollback-for-statefulset",
        XDB,
        _baseline(targetRef={"kind": "StatefulSet", "name": "m"}, action="rollback"),
        "spec.action",
    ),
    (
        "target-kind-pod",
        XDB,
        _baseline(targetRef={"kind": "Pod", "name": "m"}),
        "spec.targetRef.kind",
    ),
    (
        "capture-and-inline",
        XDB,
        _baseline(
            reference={
                "capture": {"requests": 10},
                "inline": {"features": [{"name": "length", "edges": [0, 1], "counts": [1]}]},
            }
        ),
        "spec.reference",
    ),
    ("capture-without-bound", XDB, _baseline(reference={"capture": {}}), "spec.reference.capture"),
    (
        "ks-on-categorical",
        XDB,
        _baseline(features=[{"name": "fr", "type": "finishReason", "statistic": "ks"}]),
        "spec.features[0].statistic",
    ),
    (
        "json-path-feature-without-path",
        XDB,
        _baseline(features=[{"name": "j", "type": "jsonPath"}]),
        "spec.features[0].jsonPath",
    ),
    (
        "negative-threshold",
        XDB,
        _baseline(features=[{"name": "length", "type": "responseLength", "threshold": -1}]),
        "spec.features[0].threshold",
    ),
    (
        "counts-do-not-fit-edges",
        XDB,
        _baseline(
            reference={
                "inline": {"features": [{"name": "length", "edges": [0, 1, 2], "counts": [1]}]}
            }
        ),
        "spec.reference.inline.features[0].counts",
    ),
    (
        "inline-reference-for-unknown-feature",
        XDB,
        _baseline(
            reference={"inline": {"features": [{"name": "other", "edges": [0, 1], "counts": [1]}]}}
        ),
        "spec.reference.inline.features",
    ),
    ("baseline-min-samples-zero", XDB, _baseline(minSamples=0), "spec.minSamples"),
]


@pytest.mark.parametrize(
    ("kind", "spec", "names_field"),
    [pytest.param(kind, spec, field, id=case) for case, kind, spec, field in BAD_OBJECTS],
)
def test_malformed_object_is_refused_with_a_message_naming_the_field(
    cluster: Any, namespace: str, kind: str, spec: dict[str, Any], names_field: str
) -> None:
    body = _object(kind, spec, None if kind == CXP else namespace)
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    assert names_field in result.stderr, result.stderr


def test_at_least_twenty_malformed_objects_are_covered() -> None:
    assert len(BAD_OBJECTS) >= 20


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.stem)
def test_example_is_accepted_as_it_is(cluster: Any, namespace: str, example: Path) -> None:
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(example), check=False
    )
    assert result.returncode == 0, result.stderr


def test_unknown_fields_are_pruned_when_the_client_does_not_ask_for_strict_validation(
    cluster: Any, namespace: str
) -> None:
    body = _object(XP, _policy(bogus=True), namespace)
    cluster.kubectl("apply", "--validate=false", "-f", "-", input=json.dumps(body))
    stored = json.loads(
        cluster.kubectl("get", "xp", body["metadata"]["name"], "-n", namespace, "-o", "json").stdout
    )
    assert "bogus" not in stored["spec"]


def test_defaults_are_filled_in_by_the_apiserver(cluster: Any, namespace: str) -> None:
    body = _object(
        XP, _policy(thresholds=[{"name": "e", "signal": "errorRate", "max": 0.1}]), namespace
    )
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
    stored = json.loads(
        cluster.kubectl("get", "xp", body["metadata"]["name"], "-n", namespace, "-o", "json").stdout
    )
    assert stored["spec"]["enforcementAction"] == "enforce"
    assert stored["spec"]["failurePolicy"] == "closed"
    assert stored["spec"]["thresholds"][0]["minSamples"] == 100


def test_baseline_target_cannot_be_changed(cluster: Any, namespace: str) -> None:
    body = _object(XDB, _baseline(), namespace)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
    body["spec"]["targetRef"]["name"] = "another"
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0
    assert "targetRef is immutable" in result.stderr


@pytest.mark.parametrize(
    ("resource", "field", "expected"),
    [
        ("executionpolicy.spec.boundaries", "maxRequestBytes", "Largest request body"),
        ("xp.spec.validation.response", "onFailure", "reask"),
        ("clusterexecutionpolicy.spec", "namespaceSelector", "must not be empty"),
        ("driftbaseline.spec.features", "statistic", "jensenShannon"),
        ("xdb.status", "capturedRevision", "rollback target"),
    ],
)
def test_kubectl_explain_describes_the_fields(
    cluster: Any, resource: str, field: str, expected: str
) -> None:
    output = cluster.kubectl("explain", resource).stdout
    assert field in output
    assert expected in output


def test_kubectl_get_execguard_lists_every_kind(cluster: Any, namespace: str) -> None:
    for example in sorted(EXAMPLES.glob("*.yaml")):
        cluster.kubectl("apply", "-n", namespace, "-f", str(example))
    output = cluster.kubectl("get", "execguard", "-A").stdout
    for kind in ("executionpolicy", "clusterexecutionpolicy", "driftbaseline"):
        assert f"{kind}.execguard.io/" in output
    kinds = {yaml.safe_load(path.read_text())["kind"] for path in EXAMPLES.glob("*.yaml")}
    assert kinds == {XP, CXP, XDB}
    cluster.kubectl("delete", "-n", namespace, "-f", str(EXAMPLES))
