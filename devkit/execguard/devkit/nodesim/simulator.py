"""The node simulator's control loop: register the Node, bind, run, report, clean up."""

from __future__ import annotations

import ipaddress
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from execguard.devkit.nodesim.images import ImageTable
from execguard.devkit.nodesim.pods import PodRuntime
from execguard.devkit.nodesim.resources import ResourceReader

log = logging.getLogger(__name__)

NODE_NAME = "execguard-sim"
TICK_SECONDS = 0.25
# Pod addresses start above the control plane's 127.0.0.1.
_FIRST_POD_ADDRESS = ipaddress.IPv4Address("127.0.0.2")
_LAST_POD_ADDRESS = ipaddress.IPv4Address("127.0.255.254")


class NodeSimulator:
    """Runs the pods bound to one simulated Node as local processes.

    `start()` runs the loop in a daemon thread; `stop()` ends it and stops
    every process it started, so no process outlives the simulator.
    """

    def __init__(
        self,
        api_client: Any,
        images: ImageTable,
        work_dir: Path,
        node_name: str = NODE_NAME,
        max_grace_seconds: float = 5.0,
    ) -> None:
        # The client's generated models are loose (every field Optional);
        # the simulator reads pods as the API serves them.
        self._core: Any = client.CoreV1Api(api_client)
        self._reader = ResourceReader(self._core)
        self.images = images
        self.work_dir = work_dir
        self.node_name = node_name
        self.max_grace_seconds = max_grace_seconds
        self.pods: dict[str, PodRuntime] = {}
        self._reported: dict[str, dict[str, Any]] = {}
        self._used_addresses: set[str] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.errors: list[str] = []

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Register the Node and start the loop in the background."""
        self.register_node()
        self._thread = threading.Thread(target=self._run, name="node-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and every pod process."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            for runtime in self.pods.values():
                runtime.stop(grace_seconds=1.0)
            self.pods.clear()

    def register_node(self) -> None:
        """Create (or refresh) the Node object with a Ready condition."""
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "execguard.io/simulated": "true",
                },
            },
        }
        try:
            self._core.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status = {
            "status": {
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                "addresses": [
                    {"type": "InternalIP", "address": "127.0.0.1"},
                    {"type": "Hostname", "address": self.node_name},
                ],
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "node simulator is running pods as local processes",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                ],
                "nodeInfo": {
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                    "kubeletVersion": "execguard-nodesim",
                    "containerRuntimeVersion": "local-process://0",
                    "kernelVersion": "",
                    "osImage": "",
                    "kubeProxyVersion": "",
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                },
            }
        }
        self._core.patch_node_status(self.node_name, status)

    # -- queries for tests ----------------------------------------------

    def runtime(self, namespace: str, name: str) -> PodRuntime | None:
        """The runtime of a pod by name, if this node runs it."""
        with self._lock:
            for runtime in self.pods.values():
                if runtime.namespace == namespace and runtime.name == name:
                    return runtime
        return None

    def log_path(self, namespace: str, name: str, container: str) -> Path | None:
        """Where a running pod's container writes its output."""
        runtime = self.runtime(namespace, name)
        return runtime.log_path(container) if runtime else None

    # -- the loop --------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.sync_once()
            except Exception as exc:  # the loop must survive API hiccups
                message = f"{type(exc).__name__}: {exc}"
                log.warning("node simulator sync failed: %s", message)
                self.errors.append(message)
            self._stopping.wait(TICK_SECONDS)

    def _allocate_address(self) -> str:
        address = _FIRST_POD_ADDRESS
        while str(address) in self._used_addresses:
            address += 1
            if address > _LAST_POD_ADDRESS:
                raise RuntimeError("node simulator ran out of loopback pod addresses")
        self._used_addresses.add(str(address))
        return str(address)

    def _bind(self, pod: Any) -> None:
        # The node simulator is also the scheduler: one node, so every pod fits.
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod.metadata.name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            self._core.create_namespaced_binding(
                pod.metadata.namespace, body, _preload_content=False
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def sync_once(self) -> None:
        """One pass over every pod: bind, run, report, clean up."""
        pods = self._core.list_pod_for_all_namespaces().items
        seen: set[str] = set()
        with self._lock:
            for pod in pods:
                uid = pod.metadata.uid
                if not pod.spec.node_name:
                    if pod.metadata.deletion_timestamp is None:
                        self._bind(pod)
                    continue
                if pod.spec.node_name != self.node_name:
                    continue
                seen.add(uid)
                if pod.metadata.deletion_timestamp is not None:
                    self._terminate(pod)
                    continue
                runtime = self.pods.get(uid)
                if runtime is None:
                    if (pod.status.phase or "Pending") in ("Succeeded", "Failed"):
                        continue
                    runtime = PodRuntime(
                        uid=uid,
                        namespace=pod.metadata.namespace,
                        name=pod.metadata.name,
                        pod_ip=self._allocate_address(),
                        directory=self.work_dir
                        / f"{pod.metadata.namespace}_{pod.metadata.name}_{uid[:8]}",
                        images=self.images,
                    )
                    self.pods[uid] = runtime
                runtime.tick(pod, self._reader)
                self._report(pod, runtime)
            for uid in set(self.pods) - seen:
                # Deleted without us seeing the graceful phase (e.g. forced).
                self._forget(uid)

    def _report(self, pod: Any, runtime: PodRuntime) -> None:
        status = runtime.status(pod)
        if self._reported.get(runtime.uid) == status:
            return
        try:
            self._core.patch_namespaced_pod_status(
                pod.metadata.name, pod.metadata.namespace, {"status": status}
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            return
        self._reported[runtime.uid] = status

    def _terminate(self, pod: Any) -> None:
        uid = pod.metadata.uid
        grace = min(float(pod.metadata.deletion_grace_period_seconds or 0), self.max_grace_seconds)
        runtime = self.pods.get(uid)
        if runtime is not None:
            runtime.stop(grace_seconds=max(grace, 0.5))
        try:
            # Like kubelet: once the containers are gone, finish the deletion.
            self._core.delete_namespaced_pod(
                pod.metadata.name,
                pod.metadata.namespace,
                grace_period_seconds=0,
                body=client.V1DeleteOptions(
                    grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)
                ),
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
        self._forget(uid)

    def _forget(self, uid: str) -> None:
        runtime = self.pods.pop(uid, None)
        self._reported.pop(uid, None)
        if runtime is not None:
            runtime.stop(grace_seconds=0.5)
            self._used_addresses.discard(runtime.pod_ip)
            # Keep logs for the test report; drop the volumes.
            shutil.rmtree(runtime.directory / "volumes", ignore_errors=True)
