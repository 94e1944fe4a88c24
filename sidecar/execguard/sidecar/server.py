"""Running the sidecar: both listeners, signals, draining, refusing unsafe parsers."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import http_parser, web

from execguard.sidecar.app import DRAINING, SHARED, create_app
from execguard.sidecar.config import ConfigError
from execguard.sidecar.observability.admin import create_admin_app
from execguard.sidecar.proxy.connection_guard import GuardedAppRunner
from execguard.sidecar.proxy.handler import HOLDER
from execguard.sidecar.settings import SidecarSettings

log = logging.getLogger("execguard.sidecar")


class StartupRefused(Exception):
    """The sidecar must not start in this environment or with this config."""


def compiled_parser_available() -> bool:
    """Whether aiohttp uses its compiled (llhttp) HTTP parser rather than the pure-Python one."""
    return http_parser.HttpRequestParser is not http_parser.HttpRequestParserPy


async def serve(settings: SidecarSettings, *, ready: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then drain in-flight requests within the grace period."""
    if not compiled_parser_available() and not settings.allow_pure_python_parser:
        raise StartupRefused(
            "aiohttp is using its pure-Python HTTP parser (AIOHTTP_NO_EXTENSIONS set, or the "
            "C extension missing); it has had request-smuggling vulnerabilities, so the "
            "sidecar refuses to start. Install aiohttp wheels with the compiled parser."
        )
    app = create_app(settings)
    # The config decides the listener limits, so read it before building the runner.
    from execguard.sidecar.config import parse_config
    from execguard.sidecar.reload import read_config_bytes

    try:
        config = parse_config(read_config_bytes(settings.config_path))
    except ConfigError as error:
        raise StartupRefused(str(error)) from error
    listen = config.listen
    runner = GuardedAppRunner(
        app,
        head_timeout=listen.header_timeout_seconds,
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=config.drain_grace_seconds,
        keepalive_timeout=listen.keepalive_timeout_seconds,
        max_line_size=listen.max_header_bytes,
        max_field_size=listen.max_header_bytes,
    )
    try:
        await runner.setup()
    except ConfigError as error:
        raise StartupRefused(str(error)) from error
    draining = app[DRAINING]
    admin = web.AppRunner(
        create_admin_app(lambda: app[HOLDER], lambda: app[SHARED], draining.is_set),
        access_log=None,
    )
    await admin.setup()
    await web.TCPSite(runner, listen.host, listen.port).start()
    await web.TCPSite(admin, config.admin.host, config.admin.port).start()
    log.info(
        "execguard sidecar listening",
        extra={
            "fields": {
                "proxy": f"{listen.host}:{listen.port}",
                "admin": f"{config.admin.host}:{config.admin.port}",
                "upstream": f"{config.upstream.host}:{config.upstream.port}",
                "generation": config.generation,
            }
        },
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready.set()
    await stop.wait()
    draining.set()
    grace = app[HOLDER].current.config.drain_grace_seconds
    log.info("draining", extra={"fields": {"grace_seconds": grace}})
    # Stops listening, closes idle keep-alive connections, waits up to the grace for
    # requests (streams included) still in flight, then cancels what is left.
    await runner.cleanup()
    await admin.cleanup()
    log.info("stopped")
