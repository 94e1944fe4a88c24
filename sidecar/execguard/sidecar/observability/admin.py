"""The admin application: /healthz, /readyz, /metrics, GET /v1/stats.

Served on its own port, never through the proxied one. /metrics and /v1/stats
need `Authorization: Bearer <token>` when a token is configured; the probes stay
open because the kubelet cannot present one.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from execguard.sidecar.config import AdminConfig
from execguard.sidecar.runtime import RuntimeHolder, Shared

log = logging.getLogger("execguard.sidecar.admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(status: int, document: object) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(document).encode(), content_type="application/json"
    )


def expected_token(admin: AdminConfig) -> str | None:
    """The configured token; a token file (mounted Secret) wins over the inline value."""
    if admin.token_file is not None:
        try:
            return Path(admin.token_file).read_text(encoding="utf-8").strip() or None
        except OSError:
            # Fail closed: a configured but unreadable token file must not open the API.
            return "\x00unreadable"
    return admin.token


def create_admin_app(
    get_holder: Callable[[], RuntimeHolder],
    get_shared: Callable[[], Shared],
    is_draining: Callable[[], bool],
) -> web.Application:
    """The admin app, reading live state through the given accessors."""

    def protected(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            token = expected_token(get_holder().current.config.admin)
            if token is not None:
                given = request.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                    return _json(
                        401,
                        {
                            "error": {
                                "type": "unauthorized",
                                "message": "a valid bearer token is required",
                            }
                        },
                    )
            return await handler(request)

        return guarded

    async def healthz(_: web.Request) -> web.StreamResponse:
        return _json(200, {"status": "ok"})

    async def readyz(_: web.Request) -> web.StreamResponse:
        holder = get_holder()
        config = holder.current.config
        document = {
            "ready": not is_draining(),
            "generation": config.generation,
            "draining": is_draining(),
            "configStale": holder.last_error is not None,
            "configError": holder.last_error,
        }
        return _json(503 if is_draining() else 200, document)

    async def metrics(_: web.Request) -> web.StreamResponse:
        body = generate_latest(get_shared().metrics.registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def stats(_: web.Request) -> web.StreamResponse:
        config = get_holder().current.config
        report = get_shared().stats.report(
            namespace=config.workload.namespace,
            pod=config.workload.pod,
            generation=config.generation,
        )
        return web.Response(body=report.model_dump_json().encode(), content_type="application/json")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", protected(metrics))
    app.router.add_get("/v1/stats", protected(stats))
    return app
