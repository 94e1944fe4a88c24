"""The proxy's one route: boundaries, request rules, forwarding, response checks.

The stages, in order: refuse smuggling shapes; rate limit; take a concurrency
slot; read the body within its limits; parse bounded JSON; allow-lists and token
cap; session budget; request rules; forward; then either relay the SSE stream
(checked as it passes) or validate the JSON response (`onFailure`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from aiohttp import web
from multidict import CIMultiDictProxy
from pydantic import JsonValue

from execguard.sidecar.boundaries.body import parse_json, read_body, require_json_content_type
from execguard.sidecar.boundaries.model_access import enforce_model_access
from execguard.sidecar.config import EnforcementAction, OnFailure
from execguard.sidecar.errors import (
    PolicyDenied,
    RequestRejected,
    ResponseBlocked,
    SidecarError,
    UpstreamError,
)
from execguard.sidecar.policy.input import PolicyInput
from execguard.sidecar.proxy.exchange import Exchange, RouteKind, classify
from execguard.sidecar.proxy.forwarding import read_limited
from execguard.sidecar.proxy.headers import forwardable, refuse_smuggling_shapes
from execguard.sidecar.proxy.streaming import relay_stream
from execguard.sidecar.runtime import RuntimeHolder
from execguard.sidecar.validation import openai_shapes
from execguard.sidecar.validation.response_check import (
    ResponseCheck,
    check_response,
    features_of,
    redact_body,
)

log = logging.getLogger("execguard.sidecar.proxy")

HOLDER = web.AppKey("execguard_runtime_holder", RuntimeHolder)

_NO_BODY_STATUSES = frozenset({204, 304})


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    """Handle one client request end to end."""
    holder = request.app[HOLDER]
    with holder.use() as runtime:
        kind = classify(runtime.config.upstream.protocol, request.method, request.path)
        exchange = Exchange(request, runtime, kind)
        status = 500
        try:
            response = await _handle(exchange)
        except SidecarError as error:
            runtime.metrics.rejections.labels(error.code).inc()
            if isinstance(error, PolicyDenied | ResponseBlocked):
                exchange.blocked = True
            response = error.to_response()
            for name, value in exchange.response_headers.items():
                response.headers.setdefault(name, value)
        status = response.status
        runtime.metrics.requests.labels(kind.value, str(status)).inc()
        runtime.metrics.request_latency.labels(kind.value).observe(
            time.perf_counter() - exchange.started
        )
        runtime.shared.stats.request(status=status, blocked=exchange.blocked)
        return response


async def _handle(exchange: Exchange) -> web.StreamResponse:
    request = exchange.request
    runtime = exchange.runtime
    refuse_smuggling_shapes(request.headers)
    _rate_limit(exchange)
    async with runtime.limiter.slot():
        runtime.metrics.in_flight.inc()
        try:
            if exchange.kind is RouteKind.PASSTHROUGH:
                return await _passthrough(exchange)
            return await _validated(exchange)
        finally:
            runtime.metrics.in_flight.dec()


def _rate_limit(exchange: Exchange) -> None:
    limiter = exchange.runtime.rate_limiter
    settings = exchange.runtime.config.boundaries.rate_limit
    if limiter is None or settings is None:
        return
    if settings.key.kind == "header" and settings.key.header is not None:
        key = "h:" + exchange.request.headers.get(settings.key.header, "")
    else:
        key = "ip:" + (exchange.request.remote or "")
    limiter.check(key)


async def _read(exchange: Exchange) -> bytes:
    bounds = exchange.runtime.config.boundaries
    return await read_body(
        exchange.request,
        max_bytes=bounds.max_request_bytes,
        deadline_seconds=exchange.runtime.config.listen.body_timeout_seconds,
    )


async def _passthrough(exchange: Exchange) -> web.StreamResponse:
    """Forward without parsing: only limits and metrics apply."""
    request = exchange.request
    raw = await _read(exchange)
    headers = forwardable(request.headers)
    async with exchange.runtime.upstream.send(
        request.method, request.path_qs, headers, raw or None
    ) as upstream:
        response_headers = _response_headers(upstream.headers, exchange)
        if request.method == "HEAD" or upstream.status in _NO_BODY_STATUSES:
            return web.Response(status=upstream.status, headers=response_headers)
        response = web.StreamResponse(status=upstream.status, headers=response_headers)
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
        except (TimeoutError, UpstreamError, OSError):
            # Bytes are already on their way: all that is left is to cut the connection.
            exchange.runtime.metrics.upstream_errors.labels("stalled").inc()
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response


async def _validated(exchange: Exchange) -> web.StreamResponse:
    request = exchange.request
    runtime = exchange.runtime
    bounds = runtime.config.boundaries
    raw = await _read(exchange)
    require_json_content_type(request)
    body = parse_json(raw, max_depth=bounds.max_json_depth)
    if exchange.kind.openai and not isinstance(body, dict):
        raise RequestRejected("body must be a JSON object")
    forwarded = body
    if exchange.kind.openai and isinstance(body, dict):
        forwarded = enforce_model_access(body, bounds)
    exchange.body = forwarded
    if runtime.request_schema is not None and exchange.kind is RouteKind.JSON:
        problems = runtime.request_schema.problems(forwarded)
        if problems:
            raise RequestRejected("request body does not match its schema", reasons=problems)
    _begin_session(exchange)
    await _request_rules(exchange)
    data = raw if forwarded is body else json.dumps(forwarded).encode()
    headers = forwardable(request.headers, drop=("accept-encoding", "content-type"))
    headers["Content-Type"] = "application/json"
    async with runtime.upstream.send(request.method, request.path_qs, headers, data) as upstream:
        if upstream.status >= 500:
            await read_limited(upstream, max_bytes=bounds.max_response_bytes)
            runtime.metrics.upstream_errors.labels("status_5xx").inc()
            raise UpstreamError(f"the model answered with status {upstream.status}")
        response_headers = _response_headers(upstream.headers, exchange)
        if upstream.content_type == "text/event-stream" and upstream.status < 300:
            return await relay_stream(exchange, upstream, response_headers)
        payload = await read_limited(upstream, max_bytes=bounds.max_response_bytes)
        status = upstream.status
    if not 200 <= status < 300 or status in _NO_BODY_STATUSES:
        # Client errors from the model (bad model name, ...) go back as they are.
        return web.Response(status=status, body=payload, headers=response_headers)
    try:
        parsed: JsonValue = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        runtime.metrics.upstream_errors.labels("malformed").inc()
        raise UpstreamError("the model returned a body that is not valid JSON") from error
    return await _respond_validated(exchange, status, response_headers, parsed)


def _response_headers(upstream: CIMultiDictProxy[str], exchange: Exchange) -> dict[str, str]:
    headers = {name: value for name, value in forwardable(upstream).items()}
    headers.update(exchange.response_headers)
    return headers


def _begin_session(exchange: Exchange) -> None:
    tracker = exchange.runtime.sessions
    if tracker is None:
        return
    session_id = exchange.request.headers.get(tracker.config.header)
    if not session_id:
        return
    exchange.session_id = session_id[:256]
    exchange.session = tracker.begin_step(exchange.session_id)


async def _request_rules(exchange: Exchange) -> None:
    runtime = exchange.runtime
    gate = runtime.gate
    if not gate.evaluates("request"):
        return
    document = PolicyInput(
        phase="request",
        request=exchange.request_view(),
        session=exchange.session,
        workload=exchange.workload_view(),
        params=dict(runtime.config.validation.params),
    )
    verdict = await gate.evaluate("request", document, path=exchange.request.path)
    exchange.annotate("Decision-Id", verdict.decision_id)
    if verdict.decision.warn:
        exchange.annotate("Warn", "; ".join(sorted(verdict.decision.warn)))
    if verdict.engine_failed:
        exchange.annotate("Policy", "unevaluated (failurePolicy=open)")
    if verdict.decision.allowed:
        return
    reasons = sorted(verdict.decision.deny)
    runtime.shared.stats.violation()
    gate.audit(
        decision_id=verdict.decision_id,
        phase="request",
        action="deny" if verdict.block else gate.enforcement.value,
        would_block=True,
        reasons=reasons,
        path=exchange.request.path,
    )
    if verdict.block:
        exchange.blocked = True
        raise PolicyDenied(
            "the request was denied by policy", reasons=reasons, decision_id=verdict.decision_id
        )
    exchange.annotate("Would-Block", "; ".join(reasons))


async def _respond_validated(
    exchange: Exchange, status: int, headers: dict[str, str], body: JsonValue
) -> web.StreamResponse:
    runtime = exchange.runtime
    settings = runtime.config.validation.response
    enforce = runtime.gate.enforcement is EnforcementAction.ENFORCE
    check = await check_response(exchange, status=status, headers=headers, body=body)
    reasks = 0
    if check.failed and enforce and settings.on_failure is OnFailure.REASK:
        check, body, reasks = await _reask(exchange, check, body)
    openai = exchange.kind.openai
    runtime.shared.stats.response(features_of(check, body, started=exchange.started, openai=openai))
    _charge_session(exchange, body)
    if check.decision_id is not None:
        exchange.annotate("Response-Decision-Id", check.decision_id)
    if check.warnings:
        exchange.annotate("Warn", "; ".join(check.warnings))
    if reasks:
        exchange.annotate("Reasks", str(reasks))
    if check.failed:
        _record_failure(exchange, check, reasks)
        if enforce and settings.on_failure in (OnFailure.BLOCK, OnFailure.REASK):
            exchange.blocked = True
            raise ResponseBlocked(
                "the model's response failed validation",
                reasons=check.failures,
                decision_id=check.decision_id,
                headers=exchange.response_headers,
            )
        exchange.annotate("Violations", "; ".join(check.failures))
    if not (check.failed and enforce and settings.on_failure is OnFailure.REDACT):
        check.policy_patterns = ()
    sent = redact_body(check, runtime.redactor, openai=openai)
    for rule, count in check.redactions.items():
        runtime.metrics.violations.labels(runtime.config.policy_label, "redaction", rule).inc(count)
    if check.redactions:
        exchange.annotate("Redacted", str(sum(check.redactions.values())))
    headers = {**headers, **exchange.response_headers}
    return web.Response(
        status=status,
        body=json.dumps(sent).encode(),
        content_type="application/json",
        headers={k: v for k, v in headers.items() if k.lower() != "content-type"},
    )


async def _reask(
    exchange: Exchange, check: ResponseCheck, body: JsonValue
) -> tuple[ResponseCheck, JsonValue, int]:
    """Call the model again with the failure appended, up to maxReasks within the budget."""
    runtime = exchange.runtime
    settings = runtime.config.validation.response
    request_body = exchange.body
    if not isinstance(request_body, dict):
        return check, body, 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.reask_timeout_seconds
    attempts = 0
    while check.failed and attempts < settings.max_reasks:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        attempts += 1
        runtime.metrics.actions.labels("reask").inc()
        feedback = "Your previous answer was rejected: " + "; ".join(check.failures)
        if check.reask_hint:
            feedback += f". {check.reask_hint}"
        request_body = openai_shapes.appended_feedback(request_body, feedback + ". Answer again.")
        headers = forwardable(exchange.request.headers, drop=("accept-encoding", "content-type"))
        headers["Content-Type"] = "application/json"
        try:
            async with asyncio.timeout(remaining):
                async with runtime.upstream.send(
                    exchange.request.method,
                    exchange.request.path_qs,
                    headers,
                    json.dumps(request_body).encode(),
                ) as upstream:
                    payload = await read_limited(
                        upstream, max_bytes=runtime.config.boundaries.max_response_bytes
                    )
                    status = upstream.status
        except (TimeoutError, UpstreamError):
            break
        if not 200 <= status < 300:
            break
        try:
            body = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        check = await check_response(exchange, status=status, headers={}, body=body)
    return check, body, attempts


def _record_failure(exchange: Exchange, check: ResponseCheck, reasks: int) -> None:
    runtime = exchange.runtime
    settings = runtime.config.validation.response
    enforce = runtime.gate.enforcement is EnforcementAction.ENFORCE
    action = settings.on_failure.value if enforce else runtime.gate.enforcement.value
    if enforce and settings.on_failure is OnFailure.REASK:
        action = "block"  # reasks ran out
    runtime.metrics.actions.labels(action).inc()
    runtime.shared.stats.violation()
    excerpt_chars = runtime.config.audit.excerpt_chars
    excerpt, _ = runtime.redactor.redact(check.text[:excerpt_chars])
    runtime.gate.audit(
        decision_id=check.decision_id or "",
        phase="response",
        action=action,
        would_block=True,
        reasons=[*check.failures, *([f"after {reasks} reasks"] if reasks else [])],
        path=exchange.request.path,
        excerpt=excerpt,
    )


def _charge_session(exchange: Exchange, body: JsonValue) -> None:
    tracker = exchange.runtime.sessions
    if tracker is None or exchange.session_id is None:
        return
    usage = openai_shapes.usage(body)
    if usage is not None:
        tracker.add_tokens(exchange.session_id, usage.total)
