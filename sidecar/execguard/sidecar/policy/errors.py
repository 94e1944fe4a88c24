"""The policy boundary's exception tree (see the package docstring)."""

from __future__ import annotations


class PolicyError(Exception):
    """Base class for every policy-engine failure."""


class PolicyCompileError(PolicyError):
    """A Rego module failed to compile; carries where, so users can fix it."""

    def __init__(self, message: str, *, module: str | None = None, line: int | None = None) -> None:
        self.module = module
        self.line = line
        where = ""
        if module is not None:
            where = f"{module}:{line}: " if line is not None else f"{module}: "
        super().__init__(f"{where}{message}")


class PolicyUnavailable(PolicyError):
    """The engine cannot answer: not loaded, not reachable, or not healthy."""


class PolicyEvaluationFailed(PolicyError):
    """Evaluation raised a runtime error or exceeded its time budget."""


class PolicyInputInvalid(PolicyEvaluationFailed):
    """The input document cannot be handed to Rego (e.g. not JSON-serialisable)."""


class PolicyDataInvalid(PolicyError):
    """What `load` was given is unusable: data not a JSON object, or over a size limit."""
