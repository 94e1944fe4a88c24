"""Turning the raw value of `data.execguard.<phase>` into a `Decision`.

Both engines hand back plain JSON (Rego sets arrive as arrays), so the shape
checks live here once and the engines cannot drift apart on them. A policy
that yields the wrong shape is an evaluation failure with a precise message,
never a silent allow.
"""

from __future__ import annotations

from typing import Final

from execguard.sidecar.policy.decision import Decision
from execguard.sidecar.policy.errors import PolicyEvaluationFailed
from execguard.sidecar.policy.input import Phase

PHASES: Final[tuple[Phase, ...]] = ("request", "response", "stream")

# Everything else in the package (helper rules, constants) is the author's business.
_DECISION_KEYS: Final = ("deny", "warn", "redact", "reask")


def phase_path(phase: Phase) -> str:
    """The slash-separated document path evaluated for a phase: `execguard/<phase>`."""
    return f"execguard/{phase}"


def _strings(phase: Phase, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise PolicyEvaluationFailed(
            f"data.execguard.{phase}.{key} must be a set or array of strings, "
            f"got {_json_type(value)}"
        )
    items: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise PolicyEvaluationFailed(
                f"data.execguard.{phase}.{key} must contain only strings, got {_json_type(item)}"
            )
        items.append(item)
    return tuple(items)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def decision_from_value(phase: Phase, value: object, *, defined: bool = True) -> Decision:
    """Build a Decision from the JSON value of `data.execguard.<phase>`.

    An undefined package (no rules for this phase) allows: that is what a
    policy without a `response` package means. `redact` keeps the policy's
    order, de-duplicated, because order can matter to the redactor.
    """
    if not defined:
        return Decision()
    if not isinstance(value, dict):
        raise PolicyEvaluationFailed(
            f"data.execguard.{phase} must be an object (a package), got {_json_type(value)}"
        )
    present = {key: value[key] for key in _DECISION_KEYS if key in value}
    deny = _strings(phase, "deny", present["deny"]) if "deny" in present else ()
    warn = _strings(phase, "warn", present["warn"]) if "warn" in present else ()
    redact = _strings(phase, "redact", present["redact"]) if "redact" in present else ()
    reask = present.get("reask")
    if reask is not None and not isinstance(reask, str):
        raise PolicyEvaluationFailed(
            f"data.execguard.{phase}.reask must be a string, got {_json_type(reask)}"
        )
    return Decision(
        deny=frozenset(deny),
        warn=frozenset(warn),
        redact=tuple(dict.fromkeys(redact)),
        reask=reask,
    )
