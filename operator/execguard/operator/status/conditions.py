"""Ready / Invalid conditions (Kubernetes API conventions: metav1.Condition semantics).

`lastTransitionTime` changes only when a condition's status changes; reason,
message and observedGeneration are refreshed on every reconcile.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from execguard.operator.api.base import Condition, ConditionStatus
from execguard.operator.validation.problems import Problem

READY: Final = "Ready"
INVALID: Final = "Invalid"
MAX_MESSAGE_CHARS: Final = 32_000


def set_condition(existing: Sequence[Condition], new: Condition) -> list[Condition]:
    """`existing` with `new` in place of its type, keeping the transition time if unchanged."""
    result = []
    replaced = False
    for condition in existing:
        if condition.type != new.type:
            result.append(condition)
            continue
        replaced = True
        if condition.status == new.status:
            new = new.model_copy(update={"last_transition_time": condition.last_transition_time})
        result.append(new)
    if not replaced:
        result.append(new)
    return result


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


def valid_conditions(
    existing: Sequence[Condition], generation: int, now: datetime, message: str
) -> list[Condition]:
    """Ready=True, Invalid=False for `generation`."""
    conditions = set_condition(
        existing,
        Condition(
            type=READY,
            status=ConditionStatus.TRUE,
            observed_generation=generation,
            last_transition_time=now,
            reason="Reconciled",
            message=_clip(message),
        ),
    )
    return set_condition(
        conditions,
        Condition(
            type=INVALID,
            status=ConditionStatus.FALSE,
            observed_generation=generation,
            last_transition_time=now,
            reason="Valid",
            message="",
        ),
    )


def invalid_conditions(
    existing: Sequence[Condition],
    generation: int,
    now: datetime,
    problems: Sequence[Problem],
    last_good_generation: int | None,
) -> list[Condition]:
    """Ready=False, Invalid=True carrying every problem's exact message."""
    if last_good_generation is None:
        in_effect = "no generation of this policy is in effect"
    else:
        in_effect = f"generation {last_good_generation} stays in effect"
    conditions = set_condition(
        existing,
        Condition(
            type=READY,
            status=ConditionStatus.FALSE,
            observed_generation=generation,
            last_transition_time=now,
            reason="Invalid",
            message=f"generation {generation} is invalid; {in_effect}",
        ),
    )
    return set_condition(
        conditions,
        Condition(
            type=INVALID,
            status=ConditionStatus.TRUE,
            observed_generation=generation,
            last_transition_time=now,
            reason=problems[0].reason.value,
            message=_clip("; ".join(str(problem) for problem in problems)),
        ),
    )


def status_of(conditions: Sequence[Condition], condition_type: str) -> ConditionStatus | None:
    """The status of one condition type, or None if absent."""
    for condition in conditions:
        if condition.type == condition_type:
            return condition.status
    return None
