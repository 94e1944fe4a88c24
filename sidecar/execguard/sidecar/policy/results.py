"""Turning the value of `data.execguard.lib.decision.<phase>` into a `Decision`.

Every engine evaluates the library's decision rule for the phase (see
`rego/lib/decision.rego`): an object holding the four decision rules of
`data.execguard.<phase>`, each wrapped in an array that is empty when the
rule is undefined. Both engines hand back plain JSON (Rego sets arrive as
arrays), so the shape checks live here once and the engines cannot drift
apart on them. A policy that yields the wrong shape is an evaluation failure
with a precise message, never a silent allow.
"""

from __future__ import annotations

from typing import Final

from execguard.sidecar.policy.decision import Decision
from execguard.sidecar.policy.errors import PolicyEvaluationFailed
from execguard.sidecar.policy.phases import Phase, decision_ref
from execguard.sidecar.policy.rego_values import type_name

# Everything else in the package (helper rules, constants) is the author's business.
_DECISION_KEYS: Final = ("deny", "warn", "redact", "reask")


def _strings(phase: Phase, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise PolicyEvaluationFailed(
            f"data.execguard.{phase}.{key} must be a set or array of strings, "
            f"got {type_name(value)}"
        )
    items: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise PolicyEvaluationFailed(
                f"data.execguard.{phase}.{key} must contain only strings, got {type_name(item)}"
            )
        items.append(item)
    return tuple(items)


def decision_from_value(phase: Phase, value: object) -> Decision:
    """Build a Decision from the JSON value of `data.execguard.lib.decision.<phase>`.

    Undefined rules allow: that is what a policy without a `response`
    package, or without `warn`, means. `redact` keeps the policy's order,
    de-duplicated, because order can matter to the redactor.
    """
    if value is None:
        raise PolicyEvaluationFailed(
            f"{decision_ref(phase)} is undefined: the execguard Rego library is not loaded "
            "(an OPA bundle written without it?)"
        )
    if not isinstance(value, dict) or not all(
        isinstance(value.get(key), list) and len(value[key]) <= 1 for key in _DECISION_KEYS
    ):
        raise PolicyEvaluationFailed(
            f"{decision_ref(phase)} is not the decision the execguard library computes; "
            "is a module overriding package execguard.lib.decision?"
        )
    present = {key: value[key][0] for key in _DECISION_KEYS if value[key]}
    deny = _strings(phase, "deny", present["deny"]) if "deny" in present else ()
    warn = _strings(phase, "warn", present["warn"]) if "warn" in present else ()
    redact = _strings(phase, "redact", present["redact"]) if "redact" in present else ()
    reask = present.get("reask")
    if reask is not None and not isinstance(reask, str):
        raise PolicyEvaluationFailed(
            f"data.execguard.{phase}.reask must be a string, got {type_name(reask)}"
        )
    # Every field is checked above; validating again would cost more than evaluating a rule.
    return Decision.model_construct(
        deny=frozenset(deny),
        warn=frozenset(warn),
        redact=tuple(dict.fromkeys(redact)),
        reask=reask,
    )
