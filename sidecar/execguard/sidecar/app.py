"""The application factories: the proxy app and the admin app.

`create_app(settings)` returns the proxy application; everything it needs (the
config, the policy engine, the upstream pool, the reload watcher) is built in its
`cleanup_ctx`, so nothing happens at import time and tests get a fresh instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from execguard.sidecar.config import parse_config
from execguard.sidecar.engine_selection import create_policy_engine
from execguard.sidecar.observability.audit import AuditLog
from execguard.sidecar.observability.metrics import Metrics
from execguard.sidecar.observability.stats import StatsRecorder
from execguard.sidecar.proxy.forwarding import create_upstream_session
from execguard.sidecar.proxy.handler import HOLDER, proxy_handler
from execguard.sidecar.reload import ConfigWatcher, read_config_bytes
from execguard.sidecar.runtime import EngineFactory, RuntimeHolder, Shared, build_runtime
from execguard.sidecar.settings import SidecarSettings

log = logging.getLogger("execguard.sidecar")

SHARED = web.AppKey("execguard_shared", Shared)
WATCHER = web.AppKey("execguard_watcher", ConfigWatcher)
DRAINING = web.AppKey("execguard_draining", asyncio.Event)


def create_app(
    settings: SidecarSettings, *, engine_factory: EngineFactory = create_policy_engine
) -> web.Application:
    """The proxy application; `engine_factory` is the seam unit tests replace."""
    app = web.Application(handler_args={})
    app[DRAINING] = asyncio.Event()
    app.router.add_route("*", "/{tail:.*}", proxy_handler)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        raw = read_config_bytes(settings.config_path)
        config = parse_config(raw)
        metrics = Metrics()
        audit = AuditLog(enabled=config.audit.enabled, path=config.audit.path)
        session = create_upstream_session(config.upstream.max_connections)
        shared = Shared(
            metrics=metrics,
            stats=StatsRecorder(
                window_seconds=config.stats.window_seconds,
                windows_kept=config.stats.windows_kept,
            ),
            audit=audit,
            session=session,
            engine_factory=engine_factory,
        )
        try:
            runtime = await build_runtime(config, shared)
        except BaseException:
            await session.close()
            audit.close()
            raise
        holder = RuntimeHolder(runtime)
        watcher = ConfigWatcher(settings.config_path, holder, shared, raw)
        metrics.config_generation.set(config.generation)
        app[SHARED] = shared
        app[HOLDER] = holder
        app[WATCHER] = watcher
        task = asyncio.create_task(watcher.run(settings.reload_interval_seconds))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await holder.current.close_when_idle()
        await session.close()
        audit.close()

    app.cleanup_ctx.append(lifecycle)
    return app
