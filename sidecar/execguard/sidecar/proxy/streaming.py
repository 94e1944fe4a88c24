"""Relaying an SSE completion stream while checking it.

Text is accumulated as it passes. Stream rules (`data.execguard.stream`) run at
most every `checkIntervalTokens` chunks or `checkIntervalBytes` of text; response
rules and the JSON Schema run once at the end. Redaction holds back only the few
characters a match could still grow into, so time to first byte is not delayed by
the rest of the response. A violation under `enforce` ends the stream with an
error event and `[DONE]`; the upstream request is then closed, which cancels it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from pydantic import JsonValue

from execguard.sidecar.config import EnforcementAction, OnFailure
from execguard.sidecar.observability.stats import ResponseFeatures, looks_like_refusal
from execguard.sidecar.policy.input import PolicyInput, ResponseView
from execguard.sidecar.proxy.exchange import Exchange
from execguard.sidecar.proxy.sse import (
    DONE,
    SseEvent,
    SseParser,
    SseProtocolError,
    encode_data,
    error_event,
)
from execguard.sidecar.validation import openai_shapes
from execguard.sidecar.validation.redaction import StreamRedactor

log = logging.getLogger("execguard.sidecar.streaming")


class _StreamEnded(Exception):
    """The relay decided to end the stream (already written); unwinds the loops."""


@dataclass
class _State:
    exchange: Exchange
    response: web.StreamResponse
    redactor: StreamRedactor
    text: list[str] = field(default_factory=list)
    text_chars: int = 0
    chunks_since_check: int = 0
    chars_since_check: int = 0
    template: JsonValue = None
    finish_reason: str | None = None
    completion_tokens: int | None = None
    content_chunks: int = 0
    outbox: list[bytes] = field(default_factory=list)
    checked: bool = False
    finished: bool = False
    schema_failed: bool = False

    @property
    def accumulated(self) -> str:
        return "".join(self.text)

    def send(self, data: bytes) -> None:
        """Queue bytes for the client; written once per upstream chunk (fewer syscalls)."""
        self.outbox.append(data)

    async def flush(self) -> None:
        if self.outbox:
            data, self.outbox = b"".join(self.outbox), []
            await self.response.write(data)


async def relay_stream(
    exchange: Exchange, upstream: aiohttp.ClientResponse, headers: dict[str, str]
) -> web.StreamResponse:
    """Copy the model's SSE stream to the client, checking and redacting as it goes."""
    runtime = exchange.runtime
    response = web.StreamResponse(status=upstream.status, headers=headers)
    response.content_type = "text/event-stream"
    response.headers["Cache-Control"] = "no-cache"
    await response.prepare(exchange.request)
    state = _State(exchange, response, runtime.redactor.stream())
    parser = SseParser()
    idle = runtime.upstream.stream_idle_seconds
    limit = runtime.config.boundaries.max_response_bytes
    received = 0
    try:
        while True:
            try:
                async with asyncio.timeout(idle):
                    chunk = await upstream.content.readany()
            except TimeoutError:
                runtime.metrics.upstream_errors.labels("stalled").inc()
                await _end_with_error(
                    state, "upstream_timeout", f"the model sent nothing for {idle:g} seconds"
                )
            except aiohttp.ClientError as error:
                runtime.metrics.upstream_errors.labels("protocol").inc()
                await _end_with_error(
                    state, "upstream_error", f"the model's stream broke off: {type(error).__name__}"
                )
            if not chunk:
                break
            received += len(chunk)
            if received > limit:
                runtime.metrics.upstream_errors.labels("too_large").inc()
                await _end_with_error(
                    state, "upstream_error", f"the model's stream exceeds {limit} bytes"
                )
            try:
                events = parser.feed(chunk)
            except SseProtocolError as error:
                runtime.metrics.upstream_errors.labels("malformed").inc()
                await _end_with_error(state, "upstream_error", str(error))
            for event in events:
                await _handle_event(state, event)
            await state.flush()
            if state.finished:
                break
        if not state.finished:
            for event in parser.finish():
                await _handle_event(state, event)
        if not state.finished:
            # The model closed without [DONE]: finish properly for the client anyway.
            await _finish(state)
            state.send(DONE)
    except _StreamEnded:
        pass
    await state.flush()
    _record_features(state)
    await response.write_eof()
    return response


async def _handle_event(state: _State, event: SseEvent) -> None:
    if state.finished:
        return
    if event.data is None:
        return  # comments and keep-alives carry no content
    if event.data.strip() == "[DONE]":
        await _finish(state)
        state.send(DONE)
        state.finished = True
        return
    try:
        payload: JsonValue = json.loads(event.data)
    except json.JSONDecodeError:
        state.exchange.runtime.metrics.upstream_errors.labels("malformed").inc()
        await _end_with_error(state, "upstream_error", "the model sent a malformed stream event")
    piece = openai_shapes.chunk_text(payload)
    reasons = openai_shapes.finish_reasons(payload)
    usage = openai_shapes.usage(payload)
    if usage is not None:
        state.completion_tokens = usage.completion_tokens
    if piece:
        state.content_chunks += 1
        state.text.append(piece)
        state.text_chars += len(piece)
        state.chunks_since_check += 1
        state.chars_since_check += len(piece.encode())
        state.template = payload
        await _maybe_check(state)
    if reasons:
        state.finish_reason = reasons[0]
        # Release the held-back text before the finish event, after the final checks.
        await _finish(state)
    outgoing = state.redactor.feed(piece) if piece else ""
    tail = state.redactor.flush() if reasons else ""
    if tail and piece:
        outgoing += tail
    elif tail:
        # The finish event carries no text of its own: send the held-back text first.
        state.send(encode_data(openai_shapes.with_chunk_text(state.template, tail)))
    if piece and outgoing == piece:
        state.send(event.raw + b"\n\n")  # unchanged: pass the model's bytes through as-is
        return
    if piece:
        if not outgoing and not reasons and not _has_role(payload):
            return
        payload = openai_shapes.with_chunk_text(payload, outgoing)
        state.send(encode_data(payload))
        return
    state.send(event.raw + b"\n\n")


def _has_role(payload: JsonValue) -> bool:
    if not isinstance(payload, dict):
        return False
    choices = payload.get("choices")
    if not isinstance(choices, list):
        return False
    return any(
        isinstance(choice, dict)
        and isinstance(choice.get("delta"), dict)
        and "role" in choice["delta"]  # type: ignore[operator]
        for choice in choices
    )


async def _maybe_check(state: _State) -> None:
    config = state.exchange.runtime.config.streaming
    due = (
        state.chunks_since_check >= config.check_interval_tokens
        or state.chars_since_check >= config.check_interval_bytes
    )
    if not due or not state.exchange.runtime.gate.evaluates("stream"):
        return
    state.chunks_since_check = 0
    state.chars_since_check = 0
    await _evaluate(state, "stream")


async def _evaluate(state: _State, phase: str) -> None:
    exchange = state.exchange
    runtime = exchange.runtime
    document = PolicyInput(
        phase="stream" if phase == "stream" else "response",
        request=exchange.request_view(),
        response=ResponseView(status=state.response.status, text=state.accumulated),
        session=exchange.session,
        workload=exchange.workload_view(),
        params=dict(runtime.config.validation.params),
    )
    verdict = await runtime.gate.evaluate(document.phase, document, path=exchange.request.path)
    if verdict.decision.allowed:
        return
    await _violation(state, sorted(verdict.decision.deny), verdict.decision_id, document.phase)


async def _violation(
    state: _State, reasons: list[str], decision_id: str | None, phase: str
) -> None:
    exchange = state.exchange
    runtime = exchange.runtime
    gate = runtime.gate
    on_failure = runtime.config.validation.response.on_failure
    enforce = gate.enforcement is EnforcementAction.ENFORCE
    # Text already sent cannot be recalled: mid-stream only `block` (and `reask`, which
    # cannot re-ask a stream already under way) can act, by ending the stream.
    ends = enforce and on_failure in (OnFailure.BLOCK, OnFailure.REASK)
    excerpt, _ = runtime.redactor.redact(state.accumulated[-runtime.config.audit.excerpt_chars :])
    gate.audit(
        decision_id=decision_id or "",
        phase=phase,
        action="block" if ends else on_failure.value,
        would_block=True,
        reasons=reasons,
        path=exchange.request.path,
        excerpt=excerpt,
    )
    runtime.shared.stats.violation()
    if ends:
        runtime.metrics.actions.labels("block").inc()
        exchange.blocked = True
        await _end_with_error(
            state,
            "response_blocked",
            "the response was stopped by policy",
            reasons=reasons,
            decision_id=decision_id,
        )
    runtime.metrics.actions.labels("annotate" if not enforce else on_failure.value).inc()


async def _finish(state: _State) -> None:
    """End-of-stream checks: response rules and the JSON Schema over the whole text."""
    if state.checked:
        return
    state.checked = True
    runtime = state.exchange.runtime
    if runtime.gate.evaluates("response"):
        await _evaluate(state, "response")
    if runtime.response_schema is not None:
        problems = runtime.response_schema.text_problems(state.accumulated)
        if problems:
            state.schema_failed = True
            runtime.metrics.violations.labels(
                runtime.config.policy_label, "schema", "jsonSchema"
            ).inc()
            await _violation(state, problems, None, "response")


async def _end_with_error(
    state: _State,
    code: str,
    message: str,
    *,
    reasons: list[str] | None = None,
    decision_id: str | None = None,
) -> None:
    state.finished = True
    state.send(error_event(code, message, reasons=reasons or [], decision_id=decision_id))
    state.send(DONE)
    raise _StreamEnded


def _record_features(state: _State) -> None:
    exchange = state.exchange
    runtime = exchange.runtime
    text = state.accumulated
    tokens = state.completion_tokens if state.completion_tokens is not None else None
    runtime.shared.stats.response(
        ResponseFeatures(
            length=len(text),
            output_tokens=tokens,
            latency_ms=(time.perf_counter() - exchange.started) * 1000,
            refusal=looks_like_refusal(text),
            finish_reason=state.finish_reason,
            schema_failed=state.schema_failed,
        )
    )
    if exchange.session_id is not None and runtime.sessions is not None and tokens is not None:
        runtime.sessions.add_tokens(exchange.session_id, tokens)
