"""The webhook's Prometheus metrics, on a registry of its own (no import-time globals)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class WebhookMetrics:
    """Counters and histograms of admission decisions, and the audit's findings."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.admissions = Counter(
            "execguard_webhook_admissions",
            "Admission requests answered, by webhook and result.",
            ["webhook", "result", "dry_run"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "execguard_webhook_admission_duration_seconds",
            "Time to answer an admission request (inside the webhook).",
            ["webhook"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.malformed = Counter(
            "execguard_webhook_malformed_requests",
            "Requests refused with 400 because the body was not an AdmissionReview.",
            registry=self.registry,
        )
        self.missing_sidecar_admissions = Counter(
            "execguard_webhook_missing_sidecar_admissions",
            "Pods admitted or refused that enforce-mode policies select but lack the sidecar.",
            ["operation"],
            registry=self.registry,
        )
        self.missing_sidecar_pods = Gauge(
            "execguard_missing_sidecar_pods",
            "Running pods that enforce-mode policies select but that have no sidecar (last audit).",
            registry=self.registry,
        )
        self.leader = Gauge(
            "execguard_webhook_leader",
            "1 while this replica manages certificates, configurations and the audit.",
            registry=self.registry,
        )
        self.certificate_expiry = Gauge(
            "execguard_webhook_certificate_expiry_timestamp_seconds",
            "When the serving certificate in use expires (Unix time).",
            registry=self.registry,
        )

    def observe(self, webhook: str, result: str, dry_run: bool, started: float) -> None:
        """Count one answered request and its duration since `started` (perf_counter)."""
        self.admissions.labels(webhook=webhook, result=result, dry_run=str(dry_run).lower()).inc()
        self.duration.labels(webhook=webhook).observe(time.perf_counter() - started)
