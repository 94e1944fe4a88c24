"""Everything built from one config version, swapped as a whole on hot reload.

A request takes the current `Runtime` when it starts and keeps it until it ends,
so a reload never changes the rules half-way through a request. The old runtime's
policy engine is closed only when its last request has finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import aiohttp

from execguard.sidecar.boundaries.concurrency import ConcurrencyLimiter
from execguard.sidecar.boundaries.rate_limit import RateLimiter
from execguard.sidecar.boundaries.sessions import SessionTracker
from execguard.sidecar.config import ConfigError, SidecarConfig
from execguard.sidecar.engine_selection import engine_is_shared_state
from execguard.sidecar.observability.audit import AuditLog
from execguard.sidecar.observability.metrics import Metrics
from execguard.sidecar.observability.stats import StatsRecorder
from execguard.sidecar.policy.engine import PolicyEngine
from execguard.sidecar.policy.errors import PolicyError
from execguard.sidecar.proxy.forwarding import UpstreamClient
from execguard.sidecar.validation.policy_gate import PolicyGate, phases_defined
from execguard.sidecar.validation.redaction import Redactor
from execguard.sidecar.validation.schema import SchemaCheck

log = logging.getLogger("execguard.sidecar.runtime")

EngineFactory = Callable[[SidecarConfig], PolicyEngine]


@dataclass
class Shared:
    """State that outlives config versions: metrics, stats, audit, the upstream pool."""

    metrics: Metrics
    stats: StatsRecorder
    audit: AuditLog
    session: aiohttp.ClientSession
    engine_factory: EngineFactory


@dataclass
class Runtime:
    """The pipeline's components for one config version."""

    config: SidecarConfig
    gate: PolicyGate
    redactor: Redactor
    request_schema: SchemaCheck | None
    response_schema: SchemaCheck | None
    limiter: ConcurrencyLimiter
    rate_limiter: RateLimiter | None
    sessions: SessionTracker | None
    upstream: UpstreamClient
    shared: Shared
    owns_engine: bool = True
    """False once a newer runtime took over this runtime's (OPA) engine."""
    users: int = 0
    retired: bool = False
    _closed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def metrics(self) -> Metrics:
        """The process-wide metrics."""
        return self.shared.metrics

    async def close_when_idle(self) -> None:
        """Close the engine once no request uses this runtime any more."""
        self.retired = True
        if self.users == 0:
            await self._close()

    async def _close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            if self.owns_engine:
                await self.gate.close()


async def build_runtime(
    config: SidecarConfig, shared: Shared, previous: Runtime | None = None
) -> Runtime:
    """Compile everything a config needs; raises `ConfigError` if any part is unusable.

    Rate-limit buckets, session counters and the concurrency limiter are carried
    over from `previous` when their settings did not change, so a reload neither
    forgives a throttled client nor resets a session's budget.
    """
    try:
        request_schema = (
            SchemaCheck(config.validation.request.json_schema)
            if config.validation.request.json_schema is not None
            else None
        )
        response_schema = (
            SchemaCheck(config.validation.response.json_schema)
            if config.validation.response.json_schema is not None
            else None
        )
    except ValueError as error:
        raise ConfigError(str(error)) from error
    modules = config.rego_modules
    engine: PolicyEngine | None = None
    reused = (
        previous is not None
        and previous.gate.engine is not None
        and previous.owns_engine
        and engine_is_shared_state(config)
        and previous.config.engine == config.engine
    )
    if modules:
        if reused and previous is not None:
            engine = previous.gate.engine
        else:
            engine = shared.engine_factory(config)
        assert engine is not None
        try:
            await engine.load(modules, dict(config.validation.data))
        except PolicyError as error:
            if not reused:
                await engine.close()
            raise ConfigError(f"policy modules cannot be loaded: {error}") from error
    if reused and previous is not None:
        previous.owns_engine = modules == {}
    gate = PolicyGate(
        engine,
        phases=phases_defined(modules),
        enforcement=config.enforcement_action,
        failure_policy=config.failure_policy,
        timeout=config.engine.timeout_seconds,
        policy_label=config.policy_label,
        metrics=shared.metrics,
        audit=shared.audit,
    )
    bounds = config.boundaries
    old = previous.config.boundaries if previous is not None else None
    limiter = (
        previous.limiter
        if previous is not None
        and old is not None
        and (old.max_concurrent_requests, old.max_queued_requests, old.queue_timeout_seconds)
        == (
            bounds.max_concurrent_requests,
            bounds.max_queued_requests,
            bounds.queue_timeout_seconds,
        )
        else ConcurrencyLimiter(
            max_concurrent=bounds.max_concurrent_requests,
            max_queued=bounds.max_queued_requests,
            queue_timeout=bounds.queue_timeout_seconds,
        )
    )
    rate_limiter: RateLimiter | None = None
    if bounds.rate_limit is not None:
        if previous is not None and old is not None and old.rate_limit == bounds.rate_limit:
            rate_limiter = previous.rate_limiter
        else:
            rate_limiter = RateLimiter(bounds.rate_limit)
    sessions: SessionTracker | None = None
    if bounds.sessions is not None:
        if previous is not None and previous.sessions is not None:
            sessions = previous.sessions
            sessions.config = bounds.sessions
        else:
            sessions = SessionTracker(bounds.sessions)
    return Runtime(
        config=config,
        gate=gate,
        redactor=Redactor(config.validation.response.redaction),
        request_schema=request_schema,
        response_schema=response_schema,
        limiter=limiter,
        rate_limiter=rate_limiter,
        sessions=sessions,
        upstream=UpstreamClient(shared.session, config.upstream, shared.metrics),
        shared=shared,
    )


class RuntimeHolder:
    """The runtime in force, plus the record of the last failed load for /readyz."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self.last_error: str | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def current(self) -> Runtime:
        """The runtime new requests get."""
        return self._runtime

    @contextmanager
    def use(self) -> Iterator[Runtime]:
        """Pin the current runtime for one request."""
        runtime = self._runtime
        runtime.users += 1
        try:
            yield runtime
        finally:
            runtime.users -= 1
            if runtime.retired and runtime.users == 0:
                task = asyncio.get_running_loop().create_task(runtime.close_when_idle())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def replace(self, runtime: Runtime) -> None:
        """Put a new runtime in force; the old one closes when its requests end."""
        old, self._runtime = self._runtime, runtime
        self.last_error = None
        if old is not runtime:
            await old.close_when_idle()
