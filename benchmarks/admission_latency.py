"""Admission latency of the sidecar-injecting webhook, against a same-run baseline.

Starts a local control plane and `execguard webhook serve` (registered by URL),
marks one ExecutionPolicy valid (its status, as the operator would write it; the
operator itself is not run, so its per-pod renders do not compete for the CPU),
then creates pods one after another, alternating:

* injected — opted in and selected: the apiserver calls the webhook, which reads
  the namespace and policies and answers with the patch;
* baseline — not opted in: the webhook configuration's selectors keep the
  apiserver from calling the webhook at all.

It reports p50/p99 of the pod-create round trip for both and the difference
(what the webhook adds), and the webhook's own answer time from its histogram.

    EXECGUARD_BIN_DIR=$(hack/build-binaries.sh --print-dir) \
        .venv/bin/python benchmarks/admission_latency.py [--pods 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from execguard.devkit.controlplane import start_control_plane
from execguard.devkit.stack import Webhook, apply_valid_policy, install_crds, start_webhook
from execguard.devkit.waiting import wait_for

NAMESPACE = "bench"


def pod(name: str, opted_in: bool) -> dict[str, Any]:
    labels = {"app": "model"}
    if opted_in:
        labels["execguard.io/inject"] = "enabled"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "containers": [
                {
                    "name": "model",
                    "image": "example/model:1",
                    "ports": [{"name": "http", "containerPort": 8000}],
                }
            ]
        },
    }


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def histogram_quantile(metrics: str, name: str, q: float) -> float:
    """A quantile from Prometheus histogram buckets (upper bound of the bucket)."""
    buckets: list[tuple[float, float]] = []
    for line in metrics.splitlines():
        if line.startswith(f"{name}_bucket") and 'webhook="mutate"' in line:
            bound = line.split('le="')[1].split('"')[0]
            buckets.append(
                (float("inf") if bound == "+Inf" else float(bound), float(line.split()[-1]))
            )
    buckets.sort()
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= q * total:
            return bound
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=500, help="pods per kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="execguard-bench-") as tmp:
        cluster = start_control_plane(Path(tmp) / "cp")
        webhook: Webhook | None = None
        try:
            install_crds(cluster)
            cluster.kubectl("create", "namespace", NAMESPACE)
            wait_for(
                "default SA",
                lambda: (
                    cluster.kubectl("get", "sa", "default", "-n", NAMESPACE, check=False).returncode
                    == 0
                ),
            )
            apply_valid_policy(cluster, NAMESPACE)
            webhook = start_webhook(cluster, Path(tmp) / "webhook.log", identity="bench")
            core = client.CoreV1Api(cluster.api_client())
            # Warm-up: connections, caches, the webhook's first TLS handshakes.
            for index in range(20):
                core.create_namespaced_pod(NAMESPACE, pod(f"warm-{index}", index % 2 == 0))
            timings: dict[str, list[float]] = {"injected": [], "baseline": []}
            for index in range(args.pods * 2):
                kind = "injected" if index % 2 == 0 else "baseline"
                started = time.perf_counter()
                created = core.create_namespaced_pod(
                    NAMESPACE, pod(f"{kind}-{index}", kind == "injected")
                )
                timings[kind].append((time.perf_counter() - started) * 1000)
                has_sidecar = bool(created.spec.init_containers)
                assert has_sidecar == (kind == "injected"), f"{kind} pod {index} wrong"
            _, metrics = webhook.get("/metrics")
            webhook_p50 = histogram_quantile(
                metrics, "execguard_webhook_admission_duration_seconds", 0.5
            )
            webhook_p99 = histogram_quantile(
                metrics, "execguard_webhook_admission_duration_seconds", 0.99
            )
            print(f"pod creations per kind: {args.pods} (cpus: {os.cpu_count()})")
            print(f"{'':10} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
            for kind, values in timings.items():
                print(
                    f"{kind:10} {quantile(values, 0.5):8.2f} {quantile(values, 0.99):8.2f} "
                    f"{statistics.fmean(values):8.2f}"
                )
            print(
                f"{'added':10} "
                f"{quantile(timings['injected'], 0.5) - quantile(timings['baseline'], 0.5):8.2f} "
                f"{quantile(timings['injected'], 0.99) - quantile(timings['baseline'], 0.99):8.2f}"
            )
            print(
                f"webhook answer time (its histogram, bucket upper bounds): "
                f"p50 <= {webhook_p50 * 1000:.1f} ms, p99 <= {webhook_p99 * 1000:.1f} ms"
            )
        finally:
            if webhook is not None:
                webhook.stop()
            cluster.stop()


if __name__ == "__main__":
    main()
