"""Prometheus metrics, in a registry owned by one sidecar instance (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_POLICY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)


class Metrics:
    """Every metric the sidecar exports on the admin port's /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "execguard_requests",
            "Requests answered by the proxy, by route kind and status code.",
            ["kind", "code"],
            registry=r,
        )
        self.rejections = Counter(
            "execguard_rejections",
            "Requests refused by the sidecar itself, by reason (error type).",
            ["reason"],
            registry=r,
        )
        self.decisions = Counter(
            "execguard_decisions",
            "Policy decisions by policy, phase, outcome (allow/deny/warn/error) and enforcement.",
            ["policy", "phase", "outcome", "enforcement"],
            registry=r,
        )
        self.violations = Counter(
            "execguard_violations",
            "Validation failures by signal (rule, schema, redaction) and rule or pattern name.",
            ["policy", "signal", "rule"],
            registry=r,
        )
        self.actions = Counter(
            "execguard_response_actions",
            "What was done to failing responses: block, redact, reask, annotate.",
            ["action"],
            registry=r,
        )
        self.engine_failures = Counter(
            "execguard_policy_engine_failures",
            "Policy evaluations that failed, and what failurePolicy did (open/closed).",
            ["failure_policy"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "execguard_upstream_errors",
            "Upstream failures by kind (timeout, connect, status_5xx, malformed, stalled).",
            ["kind"],
            registry=r,
        )
        self.upstream_latency = Histogram(
            "execguard_upstream_latency_seconds",
            "Time from sending to the model until its response head arrived.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.request_latency = Histogram(
            "execguard_request_latency_seconds",
            "Time from the request arriving until the proxy finished answering.",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.policy_latency = Histogram(
            "execguard_policy_evaluation_seconds",
            "Time spent in one policy evaluation, by phase.",
            ["phase"],
            buckets=_POLICY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "execguard_requests_in_flight", "Requests holding a concurrency slot.", registry=r
        )
        self.config_generation = Gauge(
            "execguard_config_generation", "Generation of the config in force.", registry=r
        )
        self.config_reload_failures = Counter(
            "execguard_config_reload_failures",
            "Config files that failed to load; the last good config stays in force.",
            registry=r,
        )
        self.config_stale = Gauge(
            "execguard_config_stale",
            "1 while the newest config file could not be loaded and an older one is in force.",
            registry=r,
        )
