"""Rego modules must compile: in the engine the sidecar embeds, and under `opa check`.

The embedded engine (`execguard.sidecar.policy.embedded`: regorus in a worker
process, rego-cpp as its fallback) is what the sidecar runs by default, so a
module it cannot compile is invalid. It finds some semantic errors only when a
rule is evaluated (calls to undefined functions), so when an `opa` binary is
available the operator also runs `opa check`, which reports those with module
and line at apply time. Both report `PolicyCompileError`-style
`module:line: message` text.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from execguard.operator.api.policy import PolicySpecFields, RegoModule
from execguard.operator.validation.problems import Problem, ProblemReason
from execguard.sidecar.policy.embedded import EmbeddedEngine
from execguard.sidecar.policy.errors import PolicyCompileError, PolicyError
from execguard.sidecar.policy.library import with_library


@dataclass(frozen=True)
class CompileFailure:
    """Where and why a module set failed to compile."""

    module: str | None
    line: int | None
    message: str


class RegoCompiler(Protocol):
    """Compiles a set of modules (name -> source); returns the failures, empty if it compiles."""

    async def compile(self, modules: Mapping[str, str]) -> list[CompileFailure]:
        """Compile all modules together."""
        ...


class EmbeddedCompiler:
    """Compiles with the sidecar's embedded engine, exactly as the sidecar will."""

    async def compile(self, modules: Mapping[str, str]) -> list[CompileFailure]:
        """Load the modules into a throw-away engine."""
        engine = EmbeddedEngine()
        try:
            await engine.load(dict(modules), {})
        except PolicyCompileError as error:
            message = str(error)
            prefix = (
                f"{error.module}:{error.line}: " if error.line is not None else f"{error.module}: "
            )
            if error.module is not None and message.startswith(prefix):
                message = message[len(prefix) :]
            return [CompileFailure(error.module, error.line, message)]
        except PolicyError as error:
            return [CompileFailure(None, None, str(error))]
        finally:
            await engine.close()
        return []


class OpaCheckCompiler:
    """Runs `opa check` (strict semantic checks) on the modules."""

    def __init__(self, opa: Path, timeout_seconds: float = 30.0) -> None:
        self._opa = opa
        self._timeout = timeout_seconds

    async def compile(self, modules: Mapping[str, str]) -> list[CompileFailure]:
        """Write the modules, with the execguard library, to a directory and check them."""
        try:
            # With the library, a call to a library function that does not exist
            # is found here rather than by the first request that reaches it.
            checked = with_library(dict(modules))
        except PolicyCompileError as error:
            return [CompileFailure(error.module, error.line, str(error))]
        with tempfile.TemporaryDirectory(prefix="execguard-rego-") as directory:
            files: dict[str, str] = {}
            for index, (name, source) in enumerate(checked.items()):
                path = Path(directory) / f"m{index}.rego"
                path.write_text(source, encoding="utf-8")
                files[path.name] = name
            process = await asyncio.create_subprocess_exec(
                str(self._opa),
                "check",
                "--format",
                "json",
                directory,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                stdout, stderr = await asyncio.wait_for(process.communicate(), self._timeout)
            except TimeoutError:
                process.kill()
                await process.wait()
                return [CompileFailure(None, None, "opa check timed out")]
        if process.returncode == 0:
            return []
        return _parse_opa_errors(stdout or stderr, files)


def _parse_opa_errors(output: bytes, files: Mapping[str, str]) -> list[CompileFailure]:
    try:
        document = json.loads(output)
    except ValueError:
        return [CompileFailure(None, None, output.decode("utf-8", "replace").strip())]
    failures = []
    for error in document.get("errors", []):
        location = error.get("location") or {}
        file_name = Path(str(location.get("file", ""))).name
        failures.append(
            CompileFailure(
                module=files.get(file_name),
                line=location.get("row"),
                message=str(error.get("message", "compile error")),
            )
        )
    return failures or [CompileFailure(None, None, output.decode("utf-8", "replace").strip())]


def _modules(spec: PolicySpecFields) -> dict[str, tuple[str, RegoModule]]:
    """Compile name -> (the spec field path, the module)."""
    found: dict[str, tuple[str, RegoModule]] = {}
    if spec.validation is None:
        return found
    for phase, part in (
        ("request", spec.validation.request),
        ("response", spec.validation.response),
    ):
        for module in part.policies if part is not None else []:
            found[f"{phase}/{module.name}"] = (
                f"spec.validation.{phase}.policies[{module.name}].rego",
                module,
            )
    return found


async def check_rego(spec: PolicySpecFields, compilers: list[RegoCompiler]) -> list[Problem]:
    """Compile the spec's modules with each compiler in turn; stop at the first that fails."""
    modules = _modules(spec)
    if not modules:
        return []
    sources = {name: module.rego for name, (_, module) in modules.items()}
    for compiler in compilers:
        failures = await compiler.compile(sources)
        if failures:
            return [_problem(failure, modules) for failure in failures]
    return []


def _problem(failure: CompileFailure, modules: Mapping[str, tuple[str, RegoModule]]) -> Problem:
    if failure.module is not None and failure.module in modules:
        field, module = modules[failure.module]
        where = f"module {module.name!r}" + (
            f" line {failure.line}" if failure.line is not None else ""
        )
        return Problem(field, ProblemReason.REGO_COMPILE_ERROR, f"{where}: {failure.message}")
    where = ""
    if failure.module is not None:
        where = f"{failure.module}" + (f" line {failure.line}" if failure.line is not None else "")
        where += ": "
    return Problem("spec.validation", ProblemReason.REGO_COMPILE_ERROR, f"{where}{failure.message}")
