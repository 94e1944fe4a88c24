"""An HTTP server that answers like a broken OPA: healthy, accepts policies,
and then answers evaluations slowly, with garbage, or with errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from aiohttp import web

from execguard.devkit.controlplane.cluster import free_port

Behaviour = Literal["slow", "garbage", "html", "error", "array", "no_result", "garbage_policies"]


@asynccontextmanager
async def fake_opa(behaviour: Behaviour, delay: float = 5.0) -> AsyncIterator[int]:
    """Serve on a free loopback port; yields the port."""

    async def health(_: web.Request) -> web.Response:
        return web.json_response({})

    async def policies(_: web.Request) -> web.Response:
        if behaviour == "garbage_policies":
            return web.Response(text="]]", content_type="application/json")
        return web.json_response({"result": []})

    async def put_policy(_: web.Request) -> web.Response:
        return web.json_response({})

    async def put_data(_: web.Request) -> web.Response:
        return web.Response(status=204)

    async def evaluate(_: web.Request) -> web.Response:
        if behaviour == "slow":
            await asyncio.sleep(delay)
            return web.json_response({"result": {}})
        if behaviour == "garbage":
            return web.Response(text="{not json", content_type="application/json")
        if behaviour == "html":
            return web.Response(text="<html>proxy error</html>", content_type="text/html")
        if behaviour == "array":
            return web.json_response([1, 2, 3])
        if behaviour == "no_result":
            return web.json_response({})
        return web.json_response({"code": "internal_error", "message": "boom"}, status=500)

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/v1/policies/", policies)
    app.router.add_put("/v1/policies/{id:.+}", put_policy)
    app.router.add_put("/v1/data/{path:.*}", put_data)
    app.router.add_post("/v1/data/{path:.+}", evaluate)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield port
    finally:
        await runner.cleanup()
