"""What every handler needs, built once at start-up and passed explicitly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from execguard.operator.handlers.rendering import NamespaceLocks
from execguard.operator.kubernetes_api import KubernetesApi
from execguard.operator.metrics import OperatorMetrics
from execguard.operator.validation.rego import RegoCompiler

EventType = Literal["Normal", "Warning"]


class EventSink(Protocol):
    """Posts a Kubernetes Event on the object being handled."""

    def __call__(self, type_: EventType, reason: str, message: str) -> None:
        """Record one event."""
        ...


def utc_now() -> datetime:
    """The current time, truncated to seconds as metav1.Time stores it."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class OperatorContext:
    """Clients, compilers, metrics and the clock shared by the handlers."""

    api: KubernetesApi
    compilers: list[RegoCompiler]
    metrics: OperatorMetrics
    locks: NamespaceLocks = field(default_factory=NamespaceLocks)
    clock: Callable[[], datetime] = utc_now
