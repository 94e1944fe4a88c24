"""Prometheus metrics of the operator, on their own registry (no global state)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class OperatorMetrics:
    """Counters and histograms of reconciles; expose with `prometheus_client.start_http_server`."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.reconciles = Counter(
            "execguard_operator_reconciles_total",
            "Reconciles by kind and result (valid, invalid, deleted, error).",
            ["kind", "result"],
            registry=self.registry,
        )
        self.errors = Counter(
            "execguard_operator_reconcile_errors_total",
            "Reconciles that failed with an error and will be retried, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "execguard_operator_reconcile_duration_seconds",
            "Time one reconcile took, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.configmap_writes = Counter(
            "execguard_operator_configmap_writes_total",
            "Sidecar ConfigMaps created, replaced or deleted.",
            ["operation"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "execguard_operator_leader",
            "1 while this replica holds the leader lease and acts, else 0.",
            registry=self.registry,
        )

    @contextmanager
    def timed(self, kind: str) -> Iterator[None]:
        """Observe the duration of the block; count it as an error if it raises."""
        started = time.monotonic()
        try:
            yield
        except Exception:
            self.errors.labels(kind=kind).inc()
            self.reconciles.labels(kind=kind, result="error").inc()
            raise
        finally:
            self.duration.labels(kind=kind).observe(time.monotonic() - started)
