"""One compiled policy set in regorus (Microsoft's Rust Rego interpreter).

Runs inside the evaluation worker process only (see `worker_main`): the
regorus binding holds the GIL while it evaluates, so it must never run in the
sidecar's own process.

regorus is stricter than OPA in one respect: a built-in that fails (for
example `json.unmarshal` of text that is not JSON, `to_number("abc")`) is an
error, where OPA makes the expression undefined. `RegorusRuntimeError`
carries that case out to the worker, which asks the rego-cpp fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# The binding ships no type information.
import regorus  # type: ignore[import-untyped]

from execguard.sidecar.policy import native_pii, native_schema
from execguard.sidecar.policy.library import with_native_library
from execguard.sidecar.policy.phases import Phase, decision_ref

# What the native library modules (`library.native_library_modules`) call.
NATIVE_FUNCTIONS: Final = {**native_pii.EXTENSIONS, **native_schema.EXTENSIONS}

# regorus formats errors as "--> module.rego:LINE:COL" over a source excerpt.
_LOCATION: Final = re.compile(r"--> (.+?):(\d+):\d+")
_MESSAGE: Final = re.compile(r"^error: (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class RegorusProblem:
    """What regorus reported: message, and module and line when it named them."""

    message: str
    module: str | None
    line: int | None


class RegorusCompileError(Exception):
    """The modules or data did not compile."""

    def __init__(self, problem: RegorusProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class RegorusRuntimeError(Exception):
    """Evaluation failed (a built-in error, conflicting outputs, a missing built-in)."""

    def __init__(self, problem: RegorusProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def read_problem(error: BaseException, modules: dict[str, str]) -> RegorusProblem:
    """Message, module and line from a regorus error (backtrace dropped)."""
    text = str(error).split("\n\nStack backtrace")[0].strip()
    located = _LOCATION.search(text)
    message_match = _MESSAGE.search(text)
    # Continuation lines ("Caused by: ...") complete the message.
    message = text[message_match.start(1) :] if message_match else text
    message = " ".join(line.strip() for line in message.splitlines() if line.strip())
    if located is None or located.group(1) not in modules:
        return RegorusProblem(message or "regorus error", None, None)
    return RegorusProblem(message, located.group(1), int(located.group(2)))


class RegorusProgram:
    """Modules plus data, parsed and checked once; evaluated per input.

    The library's PII and schema modules are swapped for their native
    variants (see `native_pii`, `native_schema`), whose work runs as regorus
    extensions.
    """

    def __init__(self, modules: dict[str, str], data_json: str) -> None:
        self._modules = modules
        engine = regorus.Engine()
        for path, (arguments, function) in NATIVE_FUNCTIONS.items():
            engine.add_extension(path, arguments, function)
        try:
            for name, source in with_native_library(modules).items():
                engine.add_policy(name, source)
            engine.add_data_json(data_json)
            # Evaluating any query runs regorus's whole-program checks (unsafe
            # variables, rule conflicts) now, so they are load errors.
            engine.eval_query("true")
        except RuntimeError as error:
            raise RegorusCompileError(read_problem(error, modules)) from error
        self._engine = engine

    def evaluate(self, phase: Phase, input_json: str) -> str:
        """The JSON value of `data.execguard.lib.decision.<phase>` for the input."""
        try:
            self._engine.set_input_json(input_json)
            # A rule, not a query: a query is planned against every module on each call.
            return str(self._engine.eval_rule_as_json(decision_ref(phase)))
        except RuntimeError as error:
            raise RegorusRuntimeError(read_problem(error, self._modules)) from error
