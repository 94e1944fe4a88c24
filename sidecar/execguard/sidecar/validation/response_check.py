"""Validating one complete (non-streamed) model response.

Runs the JSON Schema, the response rules and the redaction rules, and reports
what failed; what to do about a failure (`onFailure`) is the caller's choice.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import JsonValue

from execguard.sidecar.observability.stats import ResponseFeatures, looks_like_refusal
from execguard.sidecar.policy.input import PolicyInput, ResponseView
from execguard.sidecar.proxy.exchange import Exchange
from execguard.sidecar.validation import openai_shapes
from execguard.sidecar.validation.redaction import Redactor


@dataclass
class ResponseCheck:
    """What validating one response found."""

    body: JsonValue
    """The body to send: redacted by the configured rules (and policy patterns if asked)."""
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    schema_failed: bool = False
    decision_id: str | None = None
    reask_hint: str | None = None
    redactions: Counter[str] = field(default_factory=Counter)
    policy_patterns: tuple[str, ...] = ()
    text: str = ""

    @property
    def failed(self) -> bool:
        """Whether the response broke a rule or its schema."""
        return bool(self.failures)


async def check_response(
    exchange: Exchange, *, status: int, headers: dict[str, str], body: JsonValue
) -> ResponseCheck:
    """Schema, rules and redaction for one parsed response body."""
    runtime = exchange.runtime
    openai = exchange.kind.openai
    text = openai_shapes.response_text(body) if openai else ""
    check = ResponseCheck(body=body, text=text)
    if runtime.response_schema is not None and 200 <= status < 300:
        problems = (
            runtime.response_schema.text_problems(text)
            if openai
            else runtime.response_schema.problems(body)
        )
        if problems:
            check.schema_failed = True
            check.failures.extend(problems)
            runtime.metrics.violations.labels(
                runtime.config.policy_label, "schema", "jsonSchema"
            ).inc()
    gate = runtime.gate
    if gate.evaluates("response"):
        document = PolicyInput(
            phase="response",
            request=exchange.request_view(),
            response=ResponseView(status=status, headers=headers, body=body, text=text),
            session=exchange.session,
            workload=exchange.workload_view(),
            params=dict(runtime.config.validation.params),
        )
        verdict = await gate.evaluate("response", document, path=exchange.request.path)
        check.decision_id = verdict.decision_id
        check.failures.extend(sorted(verdict.decision.deny))
        check.warnings.extend(sorted(verdict.decision.warn))
        check.reask_hint = verdict.decision.reask
        check.policy_patterns = tuple(p for p in verdict.decision.redact if not p.startswith("$"))
    return check


def redact_body(check: ResponseCheck, redactor: Redactor, *, openai: bool) -> JsonValue:
    """The body with redaction applied to the assistant text (or to every JSON string).

    Patterns a response rule asked for (`redact`) are applied on top of the configured rules.
    """
    active = redactor.with_patterns(check.policy_patterns)
    if not active.active:
        return check.body

    def rewrite(text: str) -> str:
        redacted, hits = active.redact(text)
        check.redactions.update(hits)
        return redacted

    if openai:
        return openai_shapes.rewrite_text(check.body, rewrite)
    return _rewrite_strings(check.body, rewrite)


def _rewrite_strings(value: JsonValue, rewrite: Callable[[str], str]) -> JsonValue:
    if isinstance(value, str):
        return rewrite(value)
    if isinstance(value, list):
        return [_rewrite_strings(item, rewrite) for item in value]
    if isinstance(value, dict):
        return {key: _rewrite_strings(item, rewrite) for key, item in value.items()}
    return value


def features_of(
    check: ResponseCheck, body: JsonValue, *, started: float, openai: bool
) -> ResponseFeatures:
    """The drift features of a validated response."""
    usage = openai_shapes.usage(body) if openai else None
    reasons = openai_shapes.finish_reasons(body) if openai else []
    text = check.text if openai else json.dumps(body)
    return ResponseFeatures(
        length=len(text),
        output_tokens=usage.completion_tokens if usage is not None else None,
        latency_ms=(time.perf_counter() - started) * 1000,
        refusal=openai and looks_like_refusal(check.text),
        finish_reason=reasons[0] if reasons else None,
        schema_failed=check.schema_failed,
    )
