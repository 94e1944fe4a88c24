"""onFailure=reask: the model is asked again with the failure appended, up to maxReasks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sidecar_processes import Sidecar, base_config, free_port

SCHEMA = {"type": "object", "required": ["answer"]}


@pytest.fixture
async def learner() -> AsyncIterator[tuple[int, list[Any]]]:
    """A tiny upstream that answers badly until it has been told what was wrong."""
    seen: list[Any] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        told = any("rejected" in str(m.get("content")) for m in body["messages"])
        content = json.dumps({"answer": "42"}) if told else "not json at all"
        return web.json_response(
            {
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ]
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port, seen
    await runner.cleanup()


def reask_config(port: int, max_reasks: int) -> dict[str, Any]:
    return base_config(
        port,
        validation={
            "response": {"jsonSchema": SCHEMA, "onFailure": "reask", "maxReasks": max_reasks}
        },
    )


async def ask(sidecar: Sidecar) -> tuple[int, dict[str, str], Any]:
    body = {"model": "m", "messages": [{"role": "user", "content": "answer in JSON"}]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(sidecar.url + "/v1/chat/completions", json=body) as response,
    ):
        return response.status, dict(response.headers), await response.json()


async def test_reask_gets_a_valid_answer_on_the_second_try(
    learner: tuple[int, list[Any]], spawn: Callable[..., Sidecar]
) -> None:
    port, seen = learner
    sidecar = spawn(reask_config(port, max_reasks=2))
    status, headers, body = await ask(sidecar)
    assert status == 200
    assert json.loads(body["choices"][0]["message"]["content"]) == {"answer": "42"}
    assert headers["X-Execguard-Reasks"] == "1"
    assert len(seen) == 2
    assert "not valid JSON" in seen[1]["messages"][-1]["content"]


async def test_without_reasks_left_the_failure_is_blocked(
    learner: tuple[int, list[Any]], spawn: Callable[..., Sidecar]
) -> None:
    port, seen = learner
    sidecar = spawn(reask_config(port, max_reasks=0))
    status, _, body = await ask(sidecar)
    assert status == 502
    assert body["error"]["type"] == "response_blocked"
    assert len(seen) == 1
