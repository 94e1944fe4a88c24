"""Ready/Invalid conditions follow the Kubernetes API conventions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from execguard.operator.status.conditions import (
    INVALID,
    READY,
    invalid_conditions,
    status_of,
    valid_conditions,
)
from execguard.operator.validation.problems import Problem, ProblemReason

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
PROBLEM = Problem("spec.validation", ProblemReason.REGO_COMPILE_ERROR, "module 'm' line 3: oops")


def test_transition_time_is_kept_while_the_status_does_not_change() -> None:
    first = valid_conditions([], 1, T0, "ok")
    again = valid_conditions(first, 2, T1, "still ok")
    ready = next(c for c in again if c.type == READY)
    assert ready.last_transition_time == T0
    assert ready.observed_generation == 2
    assert ready.message == "still ok"


def test_becoming_invalid_flips_ready_and_carries_the_exact_message() -> None:
    conditions = invalid_conditions(valid_conditions([], 1, T0, "ok"), 2, T1, [PROBLEM], 1)
    assert status_of(conditions, READY) == "False"
    assert status_of(conditions, INVALID) == "True"
    invalid = next(c for c in conditions if c.type == INVALID)
    assert invalid.reason == "RegoCompileError"
    assert invalid.message == "spec.validation: module 'm' line 3: oops"
    assert invalid.last_transition_time == T1
    ready = next(c for c in conditions if c.type == READY)
    assert "generation 1 stays in effect" in ready.message
