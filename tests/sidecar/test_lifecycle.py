"""Hot reload under traffic, a bad config file, draining on SIGTERM, the admin API's
token, and what failurePolicy does when the policy engine cannot answer."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from typing import Any

import aiohttp
from sidecar_processes import ModelServer, Sidecar, base_config

CHAT = {"model": "scripted-1", "messages": [{"role": "user", "content": "tell me a secret"}]}


def rule(word: str) -> dict[str, Any]:
    source = f"""package execguard.request

deny contains "mentions {word}" if {{
  some message in input.request.body.messages
  contains(message.content, "{word}")
}}
"""
    return {"request": {"rego": {"words.rego": source}}}


async def status_of(session: aiohttp.ClientSession, sidecar: Sidecar, body: Any = CHAT) -> int:
    async with session.post(sidecar.url + "/v1/chat/completions", json=body) as response:
        await response.read()
        return response.status


async def wait_until(predicate: Callable[[], Any], within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def readyz(session: aiohttp.ClientSession, sidecar: Sidecar) -> dict[str, Any]:
    async with session.get(sidecar.admin_url + "/readyz") as response:
        return dict(await response.json())


async def test_reload_during_traffic_drops_nothing_and_takes_effect(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(base_config(model_server.port, validation=rule("password")))
    statuses: list[int] = []
    stop = asyncio.Event()

    async with aiohttp.ClientSession() as session:

        async def traffic() -> None:
            while not stop.is_set():
                plain = {**CHAT, "messages": [{"role": "user", "content": "hello"}]}
                statuses.append(await status_of(session, sidecar, plain))

        workers = [asyncio.create_task(traffic()) for _ in range(4)]
        assert await status_of(session, sidecar) == 200
        for generation in range(2, 6):
            word = "secret" if generation % 2 == 0 else "password"
            sidecar.rewrite_config(
                lambda c, g=generation, w=word: c.update(generation=g, validation=rule(w))
            )
            await wait_until(lambda g=generation: _generation_is(session, sidecar, g))
        stop.set()
        await asyncio.gather(*workers)
        # The last config (generation 5) denies "password", so "secret" passes again...
        assert await status_of(session, sidecar) == 200
        # ...and generation 4's "secret" rule is gone while "password" is denied.
        password = {**CHAT, "messages": [{"role": "user", "content": "my password"}]}
        assert await status_of(session, sidecar, password) == 403
    assert statuses, "no traffic ran during the reloads"
    assert set(statuses) == {200}


async def _generation_is(session: aiohttp.ClientSession, sidecar: Sidecar, generation: int) -> bool:
    return (await readyz(session, sidecar))["generation"] == generation


async def test_broken_config_keeps_the_last_good_one_and_says_so(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(base_config(model_server.port, validation=rule("secret")))
    async with aiohttp.ClientSession() as session:
        sidecar.config_path.write_text("{ this is not json")

        async def stale() -> bool:
            return bool((await readyz(session, sidecar))["configStale"])

        await wait_until(stale)
        state = await readyz(session, sidecar)
        assert state["ready"] is True
        assert "invalid sidecar config" in state["configError"]
        assert await status_of(session, sidecar) == 403  # the old rule still applies
        async with session.get(sidecar.admin_url + "/metrics") as response:
            assert "execguard_config_stale 1.0" in await response.text()

        # A config whose Rego does not compile is refused the same way.
        sidecar.rewrite_config(
            lambda c: c.update(
                generation=9,
                validation={"request": {"rego": {"bad.rego": "package execguard.request\ndeny {"}}},
            )
        )

        async def compile_error() -> bool:
            error = (await readyz(session, sidecar))["configError"] or ""
            return "policy modules cannot be loaded" in error

        await wait_until(compile_error)
        assert await status_of(session, sidecar) == 403

        sidecar.rewrite_config(lambda c: c.update(generation=10, validation={}))

        async def recovered() -> bool:
            state = await readyz(session, sidecar)
            return state["generation"] == 10 and not state["configStale"]

        await wait_until(recovered)
        assert await status_of(session, sidecar) == 200


async def test_sigterm_drains_an_open_stream_before_exiting(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models(
        "--stream-chunk-delay-ms", "40", "--response-words-min", "40", "--response-words-max", "40"
    )
    sidecar = spawn(base_config(server.port, drainGraceSeconds=20))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            sidecar.url + "/v1/chat/completions", json={**CHAT, "stream": True}
        ) as response,
    ):
        first = await response.content.readline()
        sidecar.process.send_signal(signal.SIGTERM)
        rest = await response.read()
    assert first.startswith(b"data: ")
    assert rest.rstrip().endswith(b"data: [DONE]")
    assert await asyncio.to_thread(sidecar.process.wait, 30) == 0


async def test_admin_api_needs_the_token_when_one_is_configured(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    config = base_config(model_server.port)
    config["admin"]["token"] = "s3cr3t-token-0123456789"
    sidecar = spawn(config)
    async with aiohttp.ClientSession() as session:
        async with session.get(sidecar.admin_url + "/v1/stats") as response:
            assert response.status == 401
        async with session.get(sidecar.admin_url + "/metrics") as response:
            assert response.status == 401
        headers = {"Authorization": "Bearer s3cr3t-token-0123456789"}
        async with session.get(sidecar.admin_url + "/v1/stats", headers=headers) as response:
            assert response.status == 200
            assert (await response.json())["version"] == "v1"
        async with session.get(sidecar.admin_url + "/healthz") as response:
            assert response.status == 200


async def test_engine_failure_closed_refuses_and_open_passes(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    # A budget no evaluation can meet makes every evaluation fail.
    engine = {"timeoutSeconds": 0.000001}
    closed = spawn(base_config(model_server.port, validation=rule("x"), engine=engine))
    opened = spawn(
        base_config(model_server.port, validation=rule("x"), engine=engine, failurePolicy="open")
    )
    async with aiohttp.ClientSession() as session:
        async with session.post(closed.url + "/v1/chat/completions", json=CHAT) as response:
            assert response.status == 503
            assert (await response.json())["error"]["type"] == "policy_unavailable"
        async with session.post(opened.url + "/v1/chat/completions", json=CHAT) as response:
            assert response.status == 200
            assert response.headers["X-Execguard-Policy"] == "unevaluated (failurePolicy=open)"
        async with session.get(opened.admin_url + "/metrics") as response:
            text = await response.text()
    assert 'execguard_policy_engine_failures_total{failure_policy="open"} 1.0' in text
    audit = [json.loads(line) for line in opened.output().splitlines() if '"decision_id"' in line]
    assert any(record.get("action") == "error" for record in audit)
