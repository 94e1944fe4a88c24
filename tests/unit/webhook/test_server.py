"""The webhook over HTTP (in-process, no TLS): answers, malformed bodies, dryRun, failures."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from webhook_builders import NAMESPACE, model_pod, policy

from execguard.operator.webhook.admission import Admission, EventTarget
from execguard.operator.webhook.cluster_view import (
    ClusterUnavailable,
    NamespaceSnapshot,
    StaticClusterView,
)
from execguard.operator.webhook.metrics import WebhookMetrics
from execguard.operator.webhook.patches import apply_patch
from execguard.operator.webhook.server import BackgroundTasks, create_app
from execguard.operator.webhook.settings import WebhookSettings

Events = list[tuple[EventTarget, str, str, str]]


def review(pod: Any, *, operation: str = "CREATE", dry_run: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": operation,
            "namespace": NAMESPACE,
            "object": pod,
            "dryRun": dry_run,
        },
    }


class Failing:
    async def snapshot(self, namespace: str) -> NamespaceSnapshot | None:
        raise ClusterUnavailable("apiserver unreachable")


async def make_client(view: Any, events: Events) -> TestClient[Any, Any]:
    tasks = BackgroundTasks()

    async def sink(target: EventTarget, type_: str, reason: str, message: str) -> None:
        events.append((target, type_, reason, message))

    metrics = WebhookMetrics()
    admission = Admission(view, WebhookSettings().injection(), metrics, sink, tasks.spawn)
    client = TestClient(TestServer(create_app(admission, metrics)))
    await client.start_server()
    client.background = tasks  # type: ignore[attr-defined]
    return client


@pytest.fixture
def events() -> Events:
    return []


@pytest.fixture
async def client(events: Events) -> AsyncIterator[TestClient[Any, Any]]:
    snapshot = NamespaceSnapshot(
        {},
        (policy("chat"), policy("strict", labels={"app": "strict"})),
        frozenset({policy("strict", labels={"app": "strict"}).key}),
    )
    test_client = await make_client(StaticClusterView({NAMESPACE: snapshot}), events)
    yield test_client
    await test_client.close()


async def test_create_of_a_selected_pod_answers_with_a_json_patch(client):
    body = review(model_pod())
    response = await client.post("/mutate", json=body)
    assert response.status == 200
    answer = await response.json()
    assert answer["response"]["uid"] == body["request"]["uid"]
    assert answer["response"]["allowed"] is True
    assert answer["response"]["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(answer["response"]["patch"]))
    patched = apply_patch(model_pod(), patch)
    assert patched["spec"]["initContainers"][-1]["name"] == "execguard-sidecar"


async def test_pod_without_opt_in_is_allowed_without_a_patch(client):
    response = await client.post("/mutate", json=review(model_pod(metadata__labels={"app": "x"})))
    answer = (await response.json())["response"]
    assert answer["allowed"] is True
    assert "patch" not in answer


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "body is not JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}', "apiVersion"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}', "kind must be AdmissionReview"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "request"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", '
            b'"request": {"uid": 5}}',
            "request.uid",
        ),
    ],
)
async def test_malformed_bodies_get_400_with_a_message(client, body, message):
    response = await client.post("/mutate", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert message in (await response.json())["error"]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("object", "spec", "containers"), "nope", "containers must be a list"),
        (("object", "metadata", "labels"), {"a": 1}, "labels must map strings"),
        (("operation",), "PATCH", "request.operation"),
        (
            ("object", "spec", "containers"),
            [{"name": "m", "ports": [{"containerPort": "80"}]}],
            "containerPort must be an integer",
        ),
        (("dryRun",), "yes", "dryRun must be a boolean"),
    ],
)
async def test_review_with_wrong_types_inside_gets_400(client, path, value, message):
    body = review(model_pod())
    target = body["request"]
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    response = await client.post("/mutate", json=body)
    assert response.status == 400
    assert message in (await response.json())["error"]


async def test_the_server_keeps_answering_after_malformed_requests(client):
    for _ in range(3):
        await client.post("/mutate", data=b"\xff\xfe", headers={"Content-Type": "application/json"})
    assert (await client.post("/mutate", json=review(model_pod()))).status == 200


async def test_wrong_content_type_is_refused(client):
    response = await client.post("/mutate", data=b"x", headers={"Content-Type": "text/plain"})
    assert response.status == 415


async def test_host_network_refusal_posts_a_warning_event(client, events):
    await client.post("/mutate", json=review(model_pod(spec__hostNetwork=True)))
    await client.background.drain()
    assert any(reason == "SidecarNotInjected" for _, _, reason, _ in events)


async def test_dry_run_gets_the_same_answer_but_posts_no_event(client, events):
    wet = await (
        await client.post("/mutate", json=review(model_pod(spec__hostNetwork=True)))
    ).json()
    events.clear()
    dry_body = review(model_pod(spec__hostNetwork=True), dry_run=True)
    dry = await (await client.post("/mutate", json=dry_body)).json()
    assert dry["response"]["patch"] == wet["response"]["patch"]
    assert events == []


async def test_api_unavailable_gives_500_so_the_failure_policy_applies(events):
    test_client = await make_client(Failing(), events)
    try:
        response = await test_client.post("/mutate", json=review(model_pod()))
        assert response.status == 500
        assert "apiserver unreachable" in (await response.json())["error"]
    finally:
        await test_client.close()


async def test_validating_check_warns_about_a_selected_pod_without_sidecar(client, events):
    response = await client.post("/validate", json=review(model_pod()))
    answer = (await response.json())["response"]
    assert answer["allowed"] is True
    assert "has no execguard sidecar" in answer["warnings"][0]


async def test_validating_check_refuses_when_the_policy_opted_in_to_refusal(client):
    pod = model_pod(metadata__labels={"app": "strict", "execguard.io/inject": "enabled"})
    answer = (await (await client.post("/validate", json=review(pod))).json())["response"]
    assert answer["allowed"] is False
    assert "has no execguard sidecar" in answer["status"]["message"]


async def test_validating_check_passes_an_injected_pod(client):
    mutated = (await (await client.post("/mutate", json=review(model_pod()))).json())["response"]
    pod = apply_patch(model_pod(), json.loads(base64.b64decode(mutated["patch"])))
    answer = (await (await client.post("/validate", json=review(pod))).json())["response"]
    assert answer == {"uid": answer["uid"], "allowed": True}


async def test_validating_check_never_refuses_updates(client):
    pod = model_pod(metadata__labels={"app": "strict", "execguard.io/inject": "enabled"})
    body = review(pod, operation="UPDATE")
    answer = (await (await client.post("/validate", json=body)).json())["response"]
    assert answer["allowed"] is True


async def test_metrics_count_answers(client):
    await client.post("/mutate", json=review(model_pod()))
    text = await (await client.get("/metrics")).text()
    assert (
        'execguard_webhook_admissions_total{dry_run="false",result="injected",webhook="mutate"}'
        in text
    )
