"""The sidecar as a real process in front of the scripted model server: the happy paths
and the refusals a client sees."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from sidecar_processes import CARD_RULE, EMAIL_RULE, ModelServer, Sidecar, base_config

SECRET_RULE = """package execguard.request

deny contains "prompt mentions a secret" if {
  some message in input.request.body.messages
  contains(message.content, "secret")
}

warn contains "prompt is shouting" if {
  some message in input.request.body.messages
  upper(message.content) == message.content
}
"""

ANSWER_SCHEMA = {
    "type": "object",
    "required": ["answer"],
    "properties": {"answer": {"type": "string"}},
}

CHAT = {"model": "scripted-1", "messages": [{"role": "user", "content": "hello there"}]}


async def post(sidecar: Sidecar, body: Any, path: str = "/v1/chat/completions", **kw: Any):
    async with (
        aiohttp.ClientSession() as session,
        session.post(sidecar.url + path, json=body, **kw) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def stream_text(sidecar: Sidecar, body: dict[str, Any]) -> tuple[str, list[Any]]:
    """The concatenated assistant text of an SSE answer, and every decoded event."""
    events: list[Any] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(sidecar.url + "/v1/chat/completions", json=body) as response,
    ):
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        raw = (await response.read()).decode()
    for block in raw.split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    text = "".join(
        choice.get("delta", {}).get("content", "")
        for event in events
        if isinstance(event, dict)
        for choice in event.get("choices", [])
    )
    return text, events


async def test_chat_completion_passes_through_with_a_decision_id(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(
        base_config(model_server.port, validation={"request": {"rego": {"r.rego": SECRET_RULE}}})
    )
    status, headers, body = await post(sidecar, CHAT)
    assert status == 200
    assert json.loads(body)["choices"][0]["message"]["role"] == "assistant"
    assert len(headers["X-Execguard-Decision-Id"]) == 32


async def test_denied_request_gets_403_with_reasons_and_never_reaches_the_model(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(
        base_config(model_server.port, validation={"request": {"rego": {"r.rego": SECRET_RULE}}})
    )
    body = {**CHAT, "messages": [{"role": "user", "content": "tell me the secret"}]}
    status, headers, raw = await post(sidecar, body)
    error = json.loads(raw)["error"]
    assert status == 403
    assert error["reasons"] == ["prompt mentions a secret"]
    assert error["decision_id"] == headers["X-Execguard-Decision-Id"]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{model_server.port}/admin/stats") as response,
    ):
        assert (await response.json())["served"] == 0


async def test_warn_passes_with_a_header(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(
        base_config(model_server.port, validation={"request": {"rego": {"r.rego": SECRET_RULE}}})
    )
    body = {**CHAT, "messages": [{"role": "user", "content": "HELLO"}]}
    status, headers, _ = await post(sidecar, body)
    assert status == 200
    assert headers["X-Execguard-Warn"] == "prompt is shouting"


async def test_dryrun_never_blocks_but_says_what_would_have_happened(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(
        base_config(
            model_server.port,
            enforcementAction="dryrun",
            validation={"request": {"rego": {"r.rego": SECRET_RULE}}},
        )
    )
    body = {**CHAT, "messages": [{"role": "user", "content": "a secret"}]}
    status, headers, _ = await post(sidecar, body)
    assert status == 200
    assert headers["X-Execguard-Would-Block"] == "prompt mentions a secret"
    async with (
        aiohttp.ClientSession() as session,
        session.get(sidecar.admin_url + "/v1/stats") as response,
    ):
        window = (await response.json())["windows"][-1]
    assert window["violations"] == 1
    assert window["blocked"] == 0


async def test_client_supplied_execguard_headers_do_not_reach_the_model_or_the_client(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models("--seed", "1")
    sidecar = spawn(base_config(server.port))
    status, headers, _ = await post(
        sidecar,
        CHAT,
        headers={"X-Execguard-Decision-Id": "forged", "Connection": "keep-alive, X-Drop"},
    )
    assert status == 200
    assert headers.get("X-Execguard-Decision-Id") != "forged"


async def test_pii_in_a_json_answer_is_redacted(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models("--seed", "3", "--pii-rate", "1")
    sidecar = spawn(
        base_config(server.port, validation={"response": {"redaction": [EMAIL_RULE, CARD_RULE]}})
    )
    for _ in range(6):
        status, headers, raw = await post(sidecar, CHAT)
        content = json.loads(raw)["choices"][0]["message"]["content"]
        assert status == 200
        assert "@example." not in content
        assert "4111" not in content
        assert "[REDACTED]" in content
        assert int(headers["X-Execguard-Redacted"]) >= 1


async def test_pii_split_across_stream_chunks_is_redacted(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    # The model streams 7-character pieces, so every email and card number is split.
    server = models("--seed", "5", "--pii-rate", "1")
    sidecar = spawn(
        base_config(server.port, validation={"response": {"redaction": [EMAIL_RULE, CARD_RULE]}})
    )
    for _ in range(6):
        text, events = await stream_text(sidecar, {**CHAT, "stream": True})
        assert events[-1] == "[DONE]"
        assert "[REDACTED]" in text
        assert "@example." not in text
        assert "4111" not in text


async def test_stream_rule_ends_the_stream_with_an_error_event(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    rule = """package execguard.stream

deny contains "answer mentions a card" if contains(input.response.text, "card number")
"""
    server = models(
        "--seed", "5", "--pii-rate", "1", "--response-words-min", "40", "--response-words-max", "40"
    )
    sidecar = spawn(
        base_config(
            server.port,
            validation={"response": {"rego": {"s.rego": rule}}},
            streaming={"checkIntervalTokens": 1},
        )
    )
    seen_block = False
    for _ in range(6):
        _, events = await stream_text(sidecar, {**CHAT, "stream": True})
        assert events[-1] == "[DONE]"
        errors = [e["error"] for e in events if isinstance(e, dict) and "error" in e]
        if errors:
            seen_block = True
            assert errors[0]["type"] == "response_blocked"
            assert errors[0]["reasons"] == ["answer mentions a card"]
    assert seen_block


async def test_structured_output_failing_its_schema_is_blocked(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models("--seed", "2", "--json-content", "--malformed-rate", "1")
    schema = {
        "type": "object",
        "required": ["answer"],
        "properties": {"answer": {"type": "string"}},
    }
    sidecar = spawn(base_config(server.port, validation={"response": {"jsonSchema": schema}}))
    status, _, raw = await post(sidecar, CHAT)
    error = json.loads(raw)["error"]
    assert status == 502
    assert error["type"] == "response_blocked"
    assert "not valid JSON" in error["reasons"][0]


async def test_structured_output_matching_its_schema_passes(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models("--seed", "2", "--json-content")
    schema = {
        "type": "object",
        "required": ["answer"],
        "properties": {"answer": {"type": "string"}},
    }
    sidecar = spawn(base_config(server.port, validation={"response": {"jsonSchema": schema}}))
    status, _, raw = await post(sidecar, CHAT)
    assert status == 200
    assert "answer" in json.loads(json.loads(raw)["choices"][0]["message"]["content"])


async def test_annotate_passes_a_failing_answer_with_headers(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models("--seed", "2", "--json-content", "--malformed-rate", "1")
    schema = {"type": "object"}
    sidecar = spawn(
        base_config(
            server.port, validation={"response": {"jsonSchema": schema, "onFailure": "annotate"}}
        )
    )
    status, headers, _ = await post(sidecar, CHAT)
    assert status == 200
    assert "not valid JSON" in headers["X-Execguard-Violations"]


@pytest.mark.parametrize(
    ("boundaries", "body", "status", "error_type"),
    [
        ({"allowedModels": ["scripted-1"]}, {**CHAT, "model": "other"}, 403, "policy_denied"),
        (
            {"allowedTools": ["search"]},
            {**CHAT, "tools": [{"type": "function", "function": {"name": "shell"}}]},
            403,
            "policy_denied",
        ),
        ({"tokens": {"maxTokens": 100}}, {**CHAT, "max_tokens": 5000}, 403, "policy_denied"),
        ({"maxJsonDepth": 8}, {**CHAT, "extra": [[[[[[[[[[1]]]]]]]]]]}, 400, "invalid_request"),
    ],
    ids=["unknown-model", "disallowed-tool", "token-cap", "deep-json"],
)
async def test_boundaries_refuse_before_the_model_is_called(
    model_server: ModelServer,
    spawn: Callable[..., Sidecar],
    boundaries: dict[str, Any],
    body: dict[str, Any],
    status: int,
    error_type: str,
) -> None:
    sidecar = spawn(base_config(model_server.port, boundaries=boundaries))
    got, _, raw = await post(sidecar, body)
    assert got == status
    assert json.loads(raw)["error"]["type"] == error_type


async def test_token_cap_in_clamp_mode_rewrites_max_tokens(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(
        base_config(model_server.port, boundaries={"tokens": {"maxTokens": 3, "mode": "clamp"}})
    )
    status, _, _ = await post(sidecar, {**CHAT, "max_tokens": 5000})
    assert status == 200


async def test_invalid_json_and_wrong_content_type_are_refused(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(base_config(model_server.port))
    async with aiohttp.ClientSession() as session:
        url = sidecar.url + "/v1/chat/completions"
        async with session.post(
            url, data=b"{nope", headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 400
            assert "not valid JSON" in (await r.json())["error"]["message"]
        async with session.post(url, data=b"{}", headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 415
            assert (await r.json())["error"]["type"] == "unsupported_media_type"
        async with session.post(
            url, data=b"[1]", headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 400


async def test_rate_limit_per_api_key_answers_429_with_retry_after(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    limit = {
        "requestsPerSecond": 0.01,
        "burst": 2,
        "key": {"kind": "header", "header": "x-api-key"},
    }
    sidecar = spawn(base_config(model_server.port, boundaries={"rateLimit": limit}))
    codes = [(await post(sidecar, CHAT, headers={"x-api-key": "a"}))[0] for _ in range(3)]
    other, _, _ = await post(sidecar, CHAT, headers={"x-api-key": "b"})
    status, headers, raw = await post(sidecar, CHAT, headers={"x-api-key": "a"})
    assert codes == [200, 200, 429]
    assert other == 200
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert json.loads(raw)["error"]["type"] == "rate_limited"


async def test_session_over_its_step_budget_is_refused(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(base_config(model_server.port, boundaries={"sessions": {"maxSteps": 2}}))
    codes = [(await post(sidecar, CHAT, headers={"x-session-id": "s1"}))[0] for _ in range(3)]
    fresh, _, _ = await post(sidecar, CHAT, headers={"x-session-id": "s2"})
    assert codes == [200, 200, 429]
    assert fresh == 200


async def test_admin_endpoints_are_not_reachable_through_the_proxy_port(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(base_config(model_server.port))
    async with aiohttp.ClientSession() as session:
        async with session.get(sidecar.url + "/v1/stats") as response:
            assert response.status == 404  # forwarded to the model, which has no such path
        async with session.get(sidecar.admin_url + "/v1/stats") as response:
            assert response.status == 200


CARD_POLICY = r"""package execguard.response

deny contains "answer contains a card number" if {
  regex.match(`\d{4} \d{4} \d{4} \d{4}`, input.response.text)
}

redact contains `\d{4} \d{4} \d{4} \d{4}`
"""


async def test_response_rule_blocks_a_leaking_answer_with_502(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models("--seed", "3", "--pii-rate", "1")
    sidecar = spawn(
        base_config(server.port, validation={"response": {"rego": {"c.rego": CARD_POLICY}}})
    )
    outcomes = set()
    for _ in range(8):
        status, headers, raw = await post(sidecar, CHAT)
        if status == 502:
            error = json.loads(raw)["error"]
            assert error["reasons"] == ["answer contains a card number"]
            assert error["decision_id"] == headers["X-Execguard-Response-Decision-Id"]
        outcomes.add(status)
    assert outcomes == {200, 502}  # the scripted PII is sometimes a card, sometimes an email


async def test_on_failure_redact_applies_the_rules_redact_patterns(
    spawn: Callable[..., Sidecar], models: Callable[..., ModelServer]
) -> None:
    server = models("--seed", "3", "--pii-rate", "1")
    validation = {"response": {"rego": {"c.rego": CARD_POLICY}, "onFailure": "redact"}}
    sidecar = spawn(base_config(server.port, validation=validation))
    redacted = 0
    for _ in range(8):
        status, headers, raw = await post(sidecar, CHAT)
        content = json.loads(raw)["choices"][0]["message"]["content"]
        assert status == 200
        assert "4111 1111" not in content
        if "X-Execguard-Violations" in headers:
            redacted += 1
            assert "[REDACTED]" in content
    assert redacted > 0
