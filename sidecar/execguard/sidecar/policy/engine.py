"""The seam between the sidecar and a Rego engine."""

from __future__ import annotations

from typing import Protocol

from execguard.sidecar.policy.decision import Decision
from execguard.sidecar.policy.input import PolicyInput
from execguard.sidecar.policy.phases import Phase


class PolicyEngine(Protocol):
    """Evaluates `data.execguard.<phase>` for an input.

    `load` compiles once per config version; `evaluate` must not recompile.
    Engines raise only `execguard.sidecar.policy.errors.PolicyError` subclasses.
    """

    async def load(self, modules: dict[str, str], data: dict[str, object]) -> None:
        """Compile and install the modules (name -> Rego source) and data document."""
        ...

    async def evaluate(self, phase: Phase, document: PolicyInput) -> Decision:
        """Evaluate the phase's rules against the input document."""
        ...

    async def close(self) -> None:
        """Release connections or native resources."""
        ...
