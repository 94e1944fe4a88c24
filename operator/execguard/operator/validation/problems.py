"""What a failed deep check reports."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ProblemReason(StrEnum):
    """The `reason` put on the Invalid condition (CamelCase, per API conventions)."""

    REGO_COMPILE_ERROR = "RegoCompileError"
    INVALID_JSON_SCHEMA = "InvalidJSONSchema"
    INVALID_REGEX = "InvalidRegex"


@dataclass(frozen=True)
class Problem:
    """One deep-check failure: the field path in the spec and the exact message."""

    field: str
    reason: ProblemReason
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"
