"""The sidecar with `engine.kind: opa`, against a real OPA server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
from sidecar_processes import ModelServer, Sidecar, base_config

from execguard.devkit.binaries import BinaryNotBuilt, find_binary
from execguard.devkit.opa_process import OpaProcess

pytestmark = pytest.mark.opa

RULE = """package execguard.request

deny contains "mentions {word}" if {{
  some message in input.request.body.messages
  contains(message.content, "{word}")
}}
"""


@pytest.fixture
def opa() -> Iterator[OpaProcess]:
    try:
        binary = find_binary("opa")
    except BinaryNotBuilt as error:
        pytest.skip(str(error))
    with OpaProcess(binary=binary) as server:
        yield server


def chat(text: str) -> dict[str, Any]:
    return {"model": "scripted-1", "messages": [{"role": "user", "content": text}]}


async def status_of(sidecar: Sidecar, text: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(sidecar.url + "/v1/chat/completions", json=chat(text)) as response,
    ):
        return response.status


async def test_opa_engine_denies_and_a_reload_removes_the_old_rule(
    opa: OpaProcess, model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    engine = {"kind": "opa", "opaUrl": opa.url}
    validation = {"request": {"rego": {"a.rego": RULE.format(word="secret")}}}
    sidecar = spawn(base_config(model_server.port, engine=engine, validation=validation))
    assert await status_of(sidecar, "a secret") == 403
    assert await status_of(sidecar, "hello") == 200

    # Replace the module with one under another name: the old one must not linger on
    # the server and keep denying.
    sidecar.rewrite_config(
        lambda c: c.update(
            generation=2,
            validation={"request": {"rego": {"b.rego": RULE.format(word="password")}}},
        )
    )
    # The reload is done once /readyz shows the new generation (modules are pushed
    # to OPA one by one, so earlier the server may briefly hold both).
    async with aiohttp.ClientSession() as session:
        for _ in range(150):
            async with session.get(sidecar.admin_url + "/readyz") as response:
                if (await response.json())["generation"] == 2:
                    break
            await asyncio.sleep(0.1)
    assert await status_of(sidecar, "my password") == 403
    assert await status_of(sidecar, "a secret") == 200
