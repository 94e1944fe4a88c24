"""The phases a policy is evaluated in, and the rule every engine evaluates for one.

Kept free of pydantic: the evaluation worker imports it, and a worker that
starts fast is a worker that is replaced fast after a crash or a timeout.
"""

from __future__ import annotations

from typing import Final, Literal

Phase = Literal["request", "response", "stream"]

PHASES: Final[tuple[Phase, ...]] = ("request", "response", "stream")

# The library package holding one decision rule per phase (rego/lib/decision.rego).
DECISION_PACKAGE: Final = "execguard/lib/decision"


def decision_path(phase: Phase) -> str:
    """The slash-separated document path every engine evaluates for a phase."""
    return f"{DECISION_PACKAGE}/{phase}"


def decision_ref(phase: Phase) -> str:
    """The same path as a Rego reference: `data.execguard.lib.decision.<phase>`."""
    return "data." + decision_path(phase).replace("/", ".")
