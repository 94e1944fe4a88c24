"""Loading conformance cases and running one case on one engine.

A case is (policy modules, data, input, expected outcome). The outcome of a
run is either a decision or the kind of error the engine raised, so both
engines can be compared with each other and with the expectation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from execguard.sidecar.policy.engine import PolicyEngine
from execguard.sidecar.policy.errors import (
    PolicyCompileError,
    PolicyEvaluationFailed,
)
from execguard.sidecar.policy.input import PolicyInput
from execguard.sidecar.policy.phases import Phase

CASES_DIR = Path(__file__).parent / "cases"
DEFAULT_REQUEST = {"method": "POST", "path": "/v1/chat/completions"}


class Expected(BaseModel):
    """What a case expects: a decision, or an error of one kind."""

    model_config = ConfigDict(extra="forbid")

    deny: list[str] = Field(default_factory=list)
    warn: list[str] = Field(default_factory=list)
    redact: list[str] = Field(default_factory=list)
    reask: str | None = None
    error: Literal["compile", "evaluation"] | None = None
    line: int | None = None


class Divergence(BaseModel):
    """A known, documented difference of one engine from the expectation."""

    model_config = ConfigDict(extra="forbid")

    embedded: str | None = None
    opa: str | None = None


class Case(BaseModel):
    """One conformance case as written in cases/*.yaml."""

    model_config = ConfigDict(extra="forbid")

    name: str
    phase: Phase = "request"
    policy: str | None = None
    modules: dict[str, str] = Field(default_factory=dict)
    data: dict[str, object] = Field(default_factory=dict)
    input: dict[str, object] = Field(default_factory=dict)
    expect: Expected
    known_divergence: Divergence = Field(default_factory=Divergence)
    source: str = ""

    def all_modules(self) -> dict[str, str]:
        """The modules to load: `policy` as policy.rego, plus `modules`."""
        modules = dict(self.modules)
        if self.policy is not None:
            modules["policy.rego"] = self.policy
        return modules

    def document(self) -> PolicyInput:
        """The full input document, with request defaults filled in."""
        fields = dict(self.input)
        request = dict(DEFAULT_REQUEST)
        given = fields.pop("request", None)
        if isinstance(given, dict):
            request.update(given)
        return PolicyInput.model_validate({"phase": self.phase, "request": request, **fields})


@dataclass(frozen=True)
class Outcome:
    """What an engine did with a case, in a form that compares and prints well."""

    deny: tuple[str, ...] = ()
    warn: tuple[str, ...] = ()
    redact: tuple[str, ...] = ()
    reask: str | None = None
    error: str | None = None
    line: int | None = None
    detail: str = field(default="", compare=False)

    def render(self) -> str:
        """One line per field that is set."""
        if self.error is not None:
            line = f" at line {self.line}" if self.line is not None else ""
            return f"error={self.error}{line} ({self.detail})"
        parts = [
            f"{name}={list(value)!r}"
            for name, value in (("deny", self.deny), ("warn", self.warn), ("redact", self.redact))
            if value
        ]
        if self.reask is not None:
            parts.append(f"reask={self.reask!r}")
        return ", ".join(parts) or "allowed (nothing)"


def expected_outcome(case: Case) -> Outcome:
    """The case's expectation as an Outcome (line only when the case pins it)."""
    e = case.expect
    if e.error is not None:
        return Outcome(error=e.error, line=e.line)
    return Outcome(
        deny=tuple(sorted(e.deny)),
        warn=tuple(sorted(e.warn)),
        redact=tuple(e.redact),
        reask=e.reask,
    )


async def run_case(engine: PolicyEngine, case: Case) -> Outcome:
    """Load and evaluate the case on an engine; errors become outcomes."""
    try:
        await engine.load(case.all_modules(), case.data)
    except PolicyCompileError as error:
        line = error.line if case.expect.line is not None else None
        return Outcome(error="compile", line=line, detail=str(error))
    try:
        decision = await engine.evaluate(case.phase, case.document())
    except PolicyEvaluationFailed as error:
        return Outcome(error="evaluation", detail=str(error))
    return Outcome(
        deny=tuple(sorted(decision.deny)),
        warn=tuple(sorted(decision.warn)),
        redact=decision.redact,
        reask=decision.reask,
    )


def load_cases() -> list[Case]:
    """Every case in cases/*.yaml, names unique across files."""
    cases: list[Case] = []
    seen: set[str] = set()
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")):
            case = Case.model_validate({**raw, "source": path.name})
            if case.name in seen:
                raise ValueError(f"duplicate conformance case name {case.name!r} in {path.name}")
            seen.add(case.name)
            cases.append(case)
    return cases
