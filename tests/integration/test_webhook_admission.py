"""The webhook against the real apiserver: bad input and faults.

The webhook runs as `execguard webhook serve` subprocesses registered by URL. Policies
are marked valid through their status (as the operator writes it), so these tests
need no operator and no node simulator: they look at what the apiserver admits.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from execguard.devkit.controlplane.cluster import free_port
from execguard.devkit.stack import (
    Webhook,
    apply_valid_policy,
    install_crds,
    remove_webhook_configurations,
    start_webhook,
)
from execguard.devkit.waiting import wait_for

pytestmark = pytest.mark.integration

IMAGE = "execguard.local/execguard:dev"


def model_pod(name: str, opted_in: bool = True, **spec: Any) -> dict[str, Any]:
    labels = {"app": "model"}
    if opted_in:
        labels["execguard.io/inject"] = "enabled"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, **spec.pop("metadata", {})},
        "spec": {
            "containers": [
                {
                    "name": "model",
                    "image": "example/model:1",
                    "ports": [{"name": "http", "containerPort": 8000}],
                    **spec.pop("container", {}),
                }
            ],
            **spec,
        },
    }


def create(cluster: Any, namespace: str, pod: dict[str, Any], *extra: str) -> Any:
    return cluster.kubectl(
        "create",
        "-n",
        namespace,
        "-o",
        "json",
        *extra,
        "-f",
        "-",
        input=json.dumps(pod),
        check=False,
    )


def init_names(pod_json: str) -> list[str]:
    return [c["name"] for c in json.loads(pod_json)["spec"].get("initContainers", [])]


def events(cluster: Any, namespace: str, reason: str) -> list[dict[str, Any]]:
    result = cluster.kubectl("get", "events", "-n", namespace, "-o", "json")
    return [e for e in json.loads(result.stdout)["items"] if e.get("reason") == reason]


@pytest.fixture(scope="module")
def webhook(control_plane: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    install_crds(control_plane)
    process = start_webhook(
        control_plane,
        tmp_path_factory.mktemp("webhook") / "webhook.log",
        identity="it-webhook-0",
        lease="it-webhook",
    )
    try:
        yield process
    finally:
        process.stop()
        remove_webhook_configurations(control_plane)


def test_opted_in_selected_pod_is_injected_and_others_are_not(control_plane, webhook, namespace):
    apply_valid_policy(control_plane, namespace)
    injected = create(control_plane, namespace, model_pod("a"))
    assert injected.returncode == 0, injected.stderr
    assert init_names(injected.stdout) == ["execguard-sidecar"]
    plain = create(control_plane, namespace, model_pod("b", opted_in=False))
    assert init_names(plain.stdout) == []


def test_dry_run_is_answered_without_creating_anything_or_posting_events(
    control_plane, webhook, namespace
):
    apply_valid_policy(control_plane, namespace)
    dry = create(control_plane, namespace, model_pod("dry"), "--dry-run=server")
    assert init_names(dry.stdout) == ["execguard-sidecar"]
    dry_host = create(
        control_plane, namespace, model_pod("dry-host", hostNetwork=True), "--dry-run=server"
    )
    assert (
        "hostNetwork"
        in json.loads(dry_host.stdout)["metadata"]["annotations"]["execguard.io/injection-skipped"]
    )
    assert control_plane.kubectl("get", "pod", "dry", "-n", namespace, check=False).returncode != 0
    assert events(control_plane, namespace, "SidecarNotInjected") == []


def test_host_network_pod_is_not_injected_with_an_annotation_warning_and_event(
    control_plane, webhook, namespace
):
    apply_valid_policy(control_plane, namespace)
    result = create(control_plane, namespace, model_pod("host", hostNetwork=True))
    assert result.returncode == 0, result.stderr
    pod = json.loads(result.stdout)
    assert "initContainers" not in pod["spec"]
    assert "hostNetwork" in pod["metadata"]["annotations"]["execguard.io/injection-skipped"]
    assert "sidecar not injected" in result.stderr  # kubectl prints admission warnings
    wait_for("the warning event", lambda: events(control_plane, namespace, "SidecarNotInjected"))


def test_named_upstream_port_missing_and_port_clash_are_explained(
    control_plane, webhook, namespace
):
    apply_valid_policy(control_plane, namespace)
    clash = model_pod(
        "clash",
        container={
            "ports": [
                {"name": "http", "containerPort": 8000},
                {"name": "other", "containerPort": 8443},
            ]
        },
    )
    result = create(control_plane, namespace, clash)
    annotation = json.loads(result.stdout)["metadata"]["annotations"][
        "execguard.io/injection-skipped"
    ]
    assert "already uses port 8443" in annotation
    missing = model_pod("missing", container={"ports": [{"name": "grpc", "containerPort": 9000}]})
    result = create(control_plane, namespace, missing)
    assert (
        "no container has a port named 'http'"
        in json.loads(result.stdout)["metadata"]["annotations"]["execguard.io/injection-skipped"]
    )


def test_opt_out_is_refused_where_the_namespace_forbids_it(control_plane, webhook, namespace):
    control_plane.kubectl("label", "namespace", namespace, "execguard.io/allow-opt-out=false")
    apply_valid_policy(control_plane, namespace)
    pod = model_pod("out", metadata={"annotations": {"execguard.io/inject": "disabled"}})
    result = create(control_plane, namespace, pod)
    assert result.returncode != 0
    assert "does not allow opting out" in result.stderr


def test_pods_in_excluded_namespaces_never_reach_the_webhook(control_plane, webhook):
    namespace = "execguard-system"
    apply_valid_policy(control_plane, namespace, name=f"sys-{uuid.uuid4().hex[:6]}")
    name = f"sys-{uuid.uuid4().hex[:6]}"
    result = create(control_plane, namespace, model_pod(name))
    try:
        assert init_names(result.stdout) == []
    finally:
        control_plane.kubectl("delete", "pod", name, "-n", namespace, "--wait=false", check=False)


def test_injected_containers_pass_restricted_pod_security_and_a_limits_quota(
    control_plane, webhook, namespace
):
    control_plane.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q"},
        "spec": {
            "hard": {
                "limits.cpu": "8",
                "limits.memory": "8Gi",
                "requests.cpu": "4",
                "requests.memory": "4Gi",
            }
        },
    }
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(quota))
    apply_valid_policy(control_plane, namespace)
    restricted = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    resources = {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }
    pod = model_pod("strict", container={"securityContext": restricted, "resources": resources})
    result = create(control_plane, namespace, pod)
    assert result.returncode == 0, result.stderr
    assert init_names(result.stdout) == ["execguard-sidecar"]


def https_post(port: int, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("POST", "/mutate", body, {"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"null",
        b'{"kind": "AdmissionReview"}',
        b"\x00\xff" * 100,
        json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {"uid": "1", "operation": "CREATE", "kind": {}, "resource": {}},
            }
        ).encode(),
    ],
)
def test_malformed_reviews_sent_straight_to_the_webhook_get_400_and_it_keeps_serving(webhook, body):
    status, text = https_post(webhook.port, body)
    assert status == 400
    assert "malformed AdmissionReview" in json.loads(text)["error"]
    assert webhook.get("/readyz")[0] == 200


class RoundRobin:
    """A TCP (L4) round-robin balancer in front of webhook replicas: a stand-in for the
    Service, whose endpoints cannot hold loopback addresses. Dead backends are skipped."""

    def __init__(self, port: int, backends: list[int]) -> None:
        self.port = port
        self.backends = backends
        self._next = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(len(self.backends)):
            backend = self.backends[self._next % len(self.backends)]
            self._next += 1
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend)
            except OSError:
                continue
            try:
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            finally:
                up_writer.close()
                writer.close()
            return
        writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._server = server
        self._ready.set()
        self._loop.run_forever()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def mutate_count(replica: Webhook) -> float:
    _, text = replica.get("/metrics")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("execguard_webhook_admissions_total") and 'webhook="mutate"' in line
    )


def leader(replica: Webhook) -> float:
    _, text = replica.get("/metrics")
    return next(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("execguard_webhook_leader ")
    )


def test_two_replicas_behind_one_address_serve_and_one_manages(
    control_plane, namespace, tmp_path, webhook
):
    # Take the module's replica out of the way: this test registers its own address.
    webhook.stop()
    remove_webhook_configurations(control_plane)
    front = free_port()
    ports = [free_port(), free_port()]
    replicas = [
        Webhook(
            control_plane,
            tmp_path / f"r{i}.log",
            port=port,
            identity=f"replica-{i}",
            sidecar_image=IMAGE,
            lease="it-webhook-pair",
            url_port=front,
        )
        for i, port in enumerate(ports)
    ]
    balancer = RoundRobin(front, ports)
    try:
        for replica in replicas:
            replica.wait_ready()
        wait_for("one replica managing", lambda: sum(leader(r) for r in replicas) == 1, 60)
        wait_for(
            "the configuration for the shared address",
            lambda: (
                f"127.0.0.1:{front}"
                in (
                    control_plane.kubectl(
                        "get",
                        "mutatingwebhookconfiguration",
                        "execguard-sidecar-injector",
                        "-o",
                        "json",
                        check=False,
                    ).stdout
                )
            ),
        )
        apply_valid_policy(control_plane, namespace)
        for index in range(8):
            result = create(control_plane, namespace, model_pod(f"p{index}"))
            assert init_names(result.stdout) == ["execguard-sidecar"], result.stderr
        # The apiserver keeps its connection open, so (as through kube-proxy) one
        # replica has answered so far. Stop that one: the other takes over at once.
        serving = [r for r in replicas if mutate_count(r) > 0]
        assert len(serving) == 1
        standby = next(r for r in replicas if r is not serving[0])
        serving[0].stop()
        for index in range(4):
            result = create(control_plane, namespace, model_pod(f"q{index}"))
            assert init_names(result.stdout) == ["execguard-sidecar"], result.stderr
        assert mutate_count(standby) > 0
        # The survivor also takes over the management duties (the Lease).
        wait_for("the survivor managing", lambda: leader(standby) == 1, 60)
    finally:
        balancer.stop()
        for replica in replicas:
            replica.stop()
        remove_webhook_configurations(control_plane)


def test_webhook_down_fail_refuses_opted_in_pods_ignore_admits_them_and_the_audit_reports(
    control_plane, namespace, tmp_path
):
    apply_valid_policy(control_plane, namespace)
    port = free_port()
    replica = Webhook(
        control_plane,
        tmp_path / "fail.log",
        port=port,
        identity="down-0",
        sidecar_image=IMAGE,
        lease="it-webhook-down",
    )
    try:
        replica.wait_ready()
        wait_for(
            "configuration",
            lambda: (
                f"127.0.0.1:{port}"
                in control_plane.kubectl(
                    "get",
                    "mutatingwebhookconfiguration",
                    "execguard-sidecar-injector",
                    "-o",
                    "json",
                    check=False,
                ).stdout
            ),
        )
        replica.stop()
        # failurePolicy Fail (the default): the opted-in pod is refused, others unaffected.
        refused = create(control_plane, namespace, model_pod("while-down"))
        assert refused.returncode != 0
        assert "pods.inject.execguard.io" in refused.stderr
        assert create(control_plane, namespace, model_pod("plain", opted_in=False)).returncode == 0
        # failurePolicy Ignore: admitted without the sidecar ...
        replica = Webhook(
            control_plane,
            tmp_path / "ignore.log",
            port=port,
            identity="down-1",
            sidecar_image=IMAGE,
            lease="it-webhook-down",
            failure_policy="Ignore",
            audit_interval=1.0,
        )
        replica.wait_ready()
        wait_for(
            "failurePolicy Ignore",
            lambda: (
                '"failurePolicy":"Ignore"'
                in control_plane.kubectl(
                    "get",
                    "mutatingwebhookconfiguration",
                    "execguard-sidecar-injector",
                    "-o",
                    "json",
                    check=False,
                ).stdout.replace(" ", "")
            ),
        )
        replica.stop()
        admitted = create(control_plane, namespace, model_pod("slipped"))
        assert admitted.returncode == 0, admitted.stderr
        assert init_names(admitted.stdout) == []
        # ... and the audit finds and reports it once a replica is back.
        replica = Webhook(
            control_plane,
            tmp_path / "audit.log",
            port=port,
            identity="down-2",
            sidecar_image=IMAGE,
            lease="it-webhook-down",
            failure_policy="Ignore",
            audit_interval=1.0,
        )
        replica.wait_ready()
        found = wait_for(
            "the MissingSidecar event",
            lambda: [
                e
                for e in events(control_plane, namespace, "MissingSidecar")
                if e["involvedObject"]["name"] == "slipped"
            ],
            60,
        )
        assert "enforce" in found[0]["message"]
        wait_for(
            "the metric",
            lambda: (
                "execguard_missing_sidecar_pods 1.0" in replica.get("/metrics")[1]
                or "execguard_missing_sidecar_pods 2.0" in replica.get("/metrics")[1]
            ),
        )
    finally:
        replica.stop()
        remove_webhook_configurations(control_plane)


def test_mirror_pods_are_not_injected(control_plane, webhook, namespace):
    apply_valid_policy(control_plane, namespace)
    # The apiserver wants mirror pods bound; the node need not exist here.
    mirror = model_pod(
        "mirror",
        metadata={"annotations": {"kubernetes.io/config.mirror": "static-hash"}},
        nodeName="no-such-node",
    )
    result = create(control_plane, namespace, mirror)
    assert result.returncode == 0, result.stderr
    assert init_names(result.stdout) == []
    assert "execguard.io/injected-by" not in json.loads(result.stdout)["metadata"]["annotations"]
