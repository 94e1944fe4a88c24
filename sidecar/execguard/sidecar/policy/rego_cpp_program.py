"""One compiled policy set in rego-cpp (`regopy`): the worker's fallback.

regorus answers every evaluation first (see `worker_main`); rego-cpp is asked
only when regorus fails at runtime, because rego-cpp follows OPA where
regorus does not: a failing built-in (`json.unmarshal` of text that is not
JSON, `to_number("abc")`) makes the expression undefined instead of failing
the query, and it has built-ins regorus lacks (`crypto.sha256`).

rego-cpp 1.x quirks handled here:

* **Never query a failed build.** rego-cpp can return a bundle that did not
  build (for example "Unable to unify due to cycle"), and querying it crashes
  the process; such a bundle is reported as a compile problem instead.
* **Strings escaped on the way in.** rego-cpp keeps string values in their
  escaped source form but stores strings from a Python input object raw, so
  the input is handed over with every string pre-escaped (as rego-cpp's own
  JSON parser would store it); results then come back as valid JSON.
"""

from __future__ import annotations

import json
from typing import Final

from regopy import Input, Interpreter, LogLevel, RegoError

from execguard.sidecar.policy.errors import PolicyCompileError, PolicyEvaluationFailed
from execguard.sidecar.policy.phases import PHASES, Phase, decision_path
from execguard.sidecar.policy.rego_cpp_errors import bundle_problem, parse_problems

UNDEFINED: Final = object()


def _escaped(value: object) -> object:
    """Every string (keys included) in the escaped form rego-cpp stores internally."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    if isinstance(value, dict):
        return {_escaped(key): _escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    return value


class RegoCppProgram:
    """Modules plus data built into a rego-cpp bundle with one decision entrypoint per phase."""

    def __init__(self, modules: dict[str, str], data_json: str) -> None:
        interpreter = Interpreter()
        # rego-cpp prints errors to stdout at the default level; we report them.
        interpreter.log_level = LogLevel.NONE
        try:
            for name, source in modules.items():
                interpreter.add_module(name, source)
            interpreter.add_data_json(data_json)
            bundle = interpreter.build(None, [decision_path(phase) for phase in PHASES])
        except RegoError as error:
            problems = parse_problems(str(error), modules)
            first = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise PolicyCompileError(
                f"{first.message}{more}", module=first.module, line=first.line
            ) from error
        if not bundle.ok():
            first, count = bundle_problem(bundle, modules)
            more = f" (and {count - 1} more)" if count > 1 else ""
            raise PolicyCompileError(f"{first.message}{more}", module=first.module, line=first.line)
        self._interpreter = interpreter
        self._bundle = bundle

    def evaluate(self, phase: Phase, value: object) -> object:
        """The JSON value of `data.execguard.lib.decision.<phase>`, or `UNDEFINED`."""
        try:
            self._interpreter.set_input(Input(_escaped(value)))
            output = self._interpreter.query_bundle_entrypoint(self._bundle, decision_path(phase))
        except (RegoError, json.JSONDecodeError) as error:
            raise PolicyEvaluationFailed(
                f"data.execguard.{phase} failed to evaluate: {error}"
            ) from error
        if not output.ok():
            raise PolicyEvaluationFailed(
                f"data.execguard.{phase} raised a runtime error (for example conflicting "
                "values for one rule, or a function with several outputs)"
            )
        expressions = output.results[0].expressions if output.results else []
        return expressions[0] if expressions else UNDEFINED
