"""Regular expressions in a spec must compile (Python `re`, as the sidecar uses)."""

from __future__ import annotations

import re

from execguard.operator.api.policy import PolicySpecFields
from execguard.operator.validation.problems import Problem, ProblemReason


def check_regexes(spec: PolicySpecFields) -> list[Problem]:
    """Problems with the redaction patterns of `spec`, one per pattern that does not compile."""
    problems = []
    response = spec.validation.response if spec.validation else None
    for rule in (response.redaction if response else None) or []:
        try:
            re.compile(rule.pattern)
        except re.error as error:
            problems.append(
                Problem(
                    field=f"spec.validation.response.redaction[{rule.name}].pattern",
                    reason=ProblemReason.INVALID_REGEX,
                    message=f"does not compile: {error}",
                )
            )
    return problems
