"""What a client sees when the model misbehaves, and that the sidecar cleans up after it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web
from sidecar_processes import ModelServer, Sidecar, base_config, free_port

CHAT = {"model": "scripted-1", "messages": [{"role": "user", "content": "hello"}]}


async def post(url: str, body: object) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return response.status, await response.read()


async def test_model_5xx_becomes_502_with_a_json_error(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models("--error-rate", "1")
    sidecar = spawn(base_config(server.port))
    status, raw = await post(sidecar.url + "/v1/chat/completions", CHAT)
    assert status == 502
    assert "status 500" in json.loads(raw)["error"]["message"]


async def test_malformed_json_from_the_model_becomes_502(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models("--malformed-rate", "1")
    sidecar = spawn(base_config(server.port, upstream={"port": server.port, "protocol": "json"}))
    status, raw = await post(sidecar.url + "/v1/json", {"q": 1})
    assert status == 502
    assert json.loads(raw)["error"]["message"] == "the model returned a body that is not valid JSON"


async def test_model_down_gives_502(spawn: Callable[..., Sidecar]) -> None:
    sidecar = spawn(base_config(free_port()))
    status, raw = await post(sidecar.url + "/v1/chat/completions", CHAT)
    assert status == 502
    assert "not reachable" in json.loads(raw)["error"]["message"]


async def test_slow_model_gives_504(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models("--latency-ms", "3000")
    timeouts = {"firstByteSeconds": 0.3}
    sidecar = spawn(base_config(server.port, upstream={"port": server.port, "timeouts": timeouts}))
    status, raw = await post(sidecar.url + "/v1/chat/completions", CHAT)
    assert status == 504
    assert json.loads(raw)["error"]["type"] == "upstream_timeout"


async def test_model_stalling_mid_stream_ends_the_stream_with_an_error_event(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models("--stall-after-chunks", "2", "--response-words-min", "30")
    timeouts = {"streamIdleSeconds": 0.5}
    sidecar = spawn(base_config(server.port, upstream={"port": server.port, "timeouts": timeouts}))
    status, raw = await post(sidecar.url + "/v1/chat/completions", {**CHAT, "stream": True})
    events = [block[6:] for block in raw.decode().split("\n\n") if block.startswith("data: ")]
    assert status == 200
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["type"] == "upstream_timeout"


@pytest.fixture
async def endless_stream() -> AsyncIterator[tuple[int, asyncio.Event]]:
    """A tiny upstream that streams forever and notes when its client went away."""
    gone = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = {"choices": [{"index": 0, "delta": {"content": "word "}, "finish_reason": None}]}
        try:
            while True:
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                await asyncio.sleep(0.02)
        except (ConnectionResetError, asyncio.CancelledError):
            gone.set()
            raise

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port, gone
    await runner.cleanup()


async def test_client_disconnect_mid_stream_cancels_the_upstream_request(
    endless_stream: tuple[int, asyncio.Event], spawn: Callable[..., Sidecar]
) -> None:
    port, gone = endless_stream
    sidecar = spawn(base_config(port))
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            sidecar.url + "/v1/chat/completions", json={**CHAT, "stream": True}
        )
        assert response.status == 200
        await response.content.readline()
        response.close()  # the client goes away mid-stream
    await asyncio.wait_for(gone.wait(), timeout=10)
    async with aiohttp.ClientSession() as session:
        for _ in range(50):
            async with session.get(sidecar.admin_url + "/metrics") as metrics:
                text = await metrics.text()
            if "execguard_requests_in_flight 0.0" in text:
                break
            await asyncio.sleep(0.1)
    assert "execguard_requests_in_flight 0.0" in text


async def test_stream_reaches_the_client_before_the_model_has_finished(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    # The model sends five chunks and then never finishes: anything the client reads
    # was relayed while the response was still being produced.
    server = models("--stall-after-chunks", "5", "--response-words-min", "30")
    sidecar = spawn(base_config(server.port))
    async with (
        aiohttp.ClientSession() as session,
        session.post(sidecar.url + "/v1/chat/completions", json={**CHAT, "stream": True}) as r,
    ):
        first = await asyncio.wait_for(r.content.readline(), timeout=20)
    assert first.startswith(b"data: {")


async def test_over_the_concurrency_bound_the_client_gets_503_with_retry_after(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models("--latency-ms", "1500")
    bounds = {"maxConcurrentRequests": 1, "maxQueuedRequests": 0}
    sidecar = spawn(base_config(server.port, boundaries=bounds))

    async def one(session: aiohttp.ClientSession) -> tuple[int, str | None]:
        async with session.post(sidecar.url + "/v1/chat/completions", json=CHAT) as response:
            await response.read()
            return response.status, response.headers.get("Retry-After")

    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(*(one(session) for _ in range(3)))
    statuses = sorted(status for status, _ in results)
    assert statuses[0] == 200
    assert 503 in statuses
    assert all(retry == "1" for status, retry in results if status == 503)


async def test_stream_longer_than_the_response_limit_is_cut_with_an_error_event(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models("--response-words-min", "200", "--response-words-max", "200")
    sidecar = spawn(base_config(server.port, boundaries={"maxResponseBytes": 2000}))
    status, raw = await post(sidecar.url + "/v1/chat/completions", {**CHAT, "stream": True})
    events = [block[6:] for block in raw.decode().split("\n\n") if block.startswith("data: ")]
    assert status == 200
    assert events[-1] == "[DONE]"
    assert "exceeds 2000 bytes" in json.loads(events[-2])["error"]["message"]
