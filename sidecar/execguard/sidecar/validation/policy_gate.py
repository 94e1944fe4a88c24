"""Runs one policy phase and turns the engine's answer into what the proxy does.

Applies the enforcement action (only `enforce` blocks), the failure policy
(engine trouble: `closed` refuses, `open` passes and counts), the evaluation time
budget, metrics and the audit log, so the proxy handler only asks "block or not?".
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import dataclass

from execguard.sidecar.config import EnforcementAction, FailurePolicy
from execguard.sidecar.errors import PolicyEngineDown
from execguard.sidecar.observability.audit import AuditLog, AuditRecord
from execguard.sidecar.observability.metrics import Metrics
from execguard.sidecar.policy.decision import Decision
from execguard.sidecar.policy.engine import PolicyEngine
from execguard.sidecar.policy.errors import PolicyError
from execguard.sidecar.policy.input import PolicyInput
from execguard.sidecar.policy.phases import Phase

log = logging.getLogger("execguard.sidecar.policy")

_PACKAGE = re.compile(r"^\s*package\s+execguard\.(request|response|stream)\b", re.MULTILINE)
_RULE_LABEL_CHARS = 48


def phases_defined(modules: dict[str, str]) -> frozenset[Phase]:
    """The phases some module defines rules for; the others need no evaluation at all."""
    found: set[Phase] = set()
    for source in modules.values():
        for match in _PACKAGE.finditer(source):
            phase = match.group(1)
            if phase == "request":
                found.add("request")
            elif phase == "response":
                found.add("response")
            else:
                found.add("stream")
    return frozenset(found)


def new_decision_id() -> str:
    """A fresh id that ties a client's error, the response headers and the audit record."""
    return uuid.uuid4().hex


def rule_label(message: str) -> str:
    """A bounded metric label for a deny/warn message: its text before any ':' detail."""
    return message.split(":", 1)[0].strip()[:_RULE_LABEL_CHARS] or "<empty>"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one phase."""

    decision: Decision
    decision_id: str
    block: bool
    """True when the proxy must refuse: a deny under `enforce`."""
    engine_failed: bool = False

    @property
    def would_block(self) -> bool:
        """A deny was returned, whatever the enforcement action."""
        return not self.decision.allowed


_ALLOW = Decision()


class PolicyGate:
    """The configured engine plus what to do with its answers."""

    def __init__(
        self,
        engine: PolicyEngine | None,
        *,
        phases: frozenset[Phase],
        enforcement: EnforcementAction,
        failure_policy: FailurePolicy,
        timeout: float,
        policy_label: str,
        metrics: Metrics,
        audit: AuditLog,
    ) -> None:
        self.engine = engine
        self.phases = phases
        self.enforcement = enforcement
        self._failure_policy = failure_policy
        self._timeout = timeout
        self._policy = policy_label
        self._metrics = metrics
        self._audit = audit

    def evaluates(self, phase: Phase) -> bool:
        """Whether any rule exists for the phase."""
        return self.engine is not None and phase in self.phases

    async def evaluate(self, phase: Phase, document: PolicyInput, *, path: str) -> Verdict:
        """Evaluate one phase; raises `PolicyEngineDown` when the engine fails closed."""
        decision_id = new_decision_id()
        if self.engine is None or phase not in self.phases:
            return Verdict(_ALLOW, decision_id, block=False)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                decision = await self.engine.evaluate(phase, document)
        except (PolicyError, TimeoutError) as error:
            return self._engine_failed(phase, decision_id, error, path=path)
        finally:
            self._metrics.policy_latency.labels(phase).observe(time.perf_counter() - started)
        block = not decision.allowed and self.enforcement is EnforcementAction.ENFORCE
        outcome = "deny" if decision.deny else "warn" if decision.warn else "allow"
        self._metrics.decisions.labels(self._policy, phase, outcome, self.enforcement.value).inc()
        for message in decision.deny:
            self._metrics.violations.labels(self._policy, "rule", rule_label(message)).inc()
        if decision.deny or decision.warn:
            log.info(
                "policy %s on %s",
                outcome,
                phase,
                extra={
                    "fields": {
                        "decision_id": decision_id,
                        "phase": phase,
                        "deny": sorted(decision.deny),
                        "warn": sorted(decision.warn),
                        "enforcement": self.enforcement.value,
                        "blocked": block,
                    }
                },
            )
        return Verdict(decision, decision_id, block=block)

    def _engine_failed(
        self, phase: Phase, decision_id: str, error: BaseException, *, path: str
    ) -> Verdict:
        reason = (
            f"policy evaluation exceeded {self._timeout:g}s"
            if isinstance(error, TimeoutError)
            else f"{type(error).__name__}: {error}"
        )
        self._metrics.engine_failures.labels(self._failure_policy.value).inc()
        self._metrics.decisions.labels(self._policy, phase, "error", self.enforcement.value).inc()
        log.warning(
            "policy engine failed on %s; failurePolicy=%s",
            phase,
            self._failure_policy.value,
            extra={"fields": {"decision_id": decision_id, "error": reason}},
        )
        self.audit(
            decision_id=decision_id,
            phase=phase,
            action="error",
            would_block=self._failure_policy is FailurePolicy.CLOSED,
            reasons=[reason],
            path=path,
        )
        if self._failure_policy is FailurePolicy.CLOSED:
            raise PolicyEngineDown(
                "the policy engine is unavailable; refusing (failurePolicy=closed)",
                reasons=[reason],
                decision_id=decision_id,
            ) from error
        return Verdict(_ALLOW, decision_id, block=False, engine_failed=True)

    def audit(
        self,
        *,
        decision_id: str,
        phase: str,
        action: str,
        would_block: bool,
        reasons: list[str],
        path: str,
        excerpt: str = "",
        workload: str = "",
    ) -> None:
        """Write an audit record (callers pass excerpts already redacted)."""
        self._audit.write(
            AuditRecord(
                decision_id=decision_id,
                policy=self._policy,
                phase=phase,
                action=action,
                enforcement=self.enforcement.value,
                would_block=would_block,
                reasons=reasons,
                path=path,
                excerpt=excerpt,
                workload=workload,
            )
        )

    async def close(self) -> None:
        """Release the engine."""
        if self.engine is not None:
            await self.engine.close()
