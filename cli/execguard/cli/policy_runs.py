"""Running a policy folder's fixtures on an engine and judging the results."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum

from execguard.cli.policy_fixtures import Expectation, Fixture, PolicyFolder
from execguard.sidecar.policy.decision import Decision
from execguard.sidecar.policy.engine import PolicyEngine
from execguard.sidecar.policy.errors import PolicyCompileError, PolicyEvaluationFailed


class EngineKind(StrEnum):
    """Which engine `policy test|eval` uses."""

    EMBEDDED = "embedded"
    OPA = "opa"


@dataclass(frozen=True)
class FixtureResult:
    """One fixture's outcome: what the engine said and what did not match."""

    fixture: Fixture
    decision: Decision | None
    error: str | None
    error_kind: str | None
    mismatches: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """True when every expected key matched."""
        return not self.mismatches


def _mismatches(
    expect: Expectation, decision: Decision | None, error_kind: str | None
) -> list[str]:
    problems: list[str] = []
    if expect.error is not None or error_kind is not None:
        if expect.error != error_kind:
            problems.append(
                f"expected {expect.error or 'a decision'}, got {error_kind or 'a decision'}"
            )
        return problems
    assert decision is not None
    if expect.allowed is not None and expect.allowed != decision.allowed:
        problems.append(f"expected allowed={expect.allowed}, got allowed={decision.allowed}")
    for key in ("deny", "warn"):
        wanted = getattr(expect, key)
        got: frozenset[str] = getattr(decision, key)
        if wanted is not None and frozenset(wanted) != got:
            missing = sorted(frozenset(wanted) - got)
            extra = sorted(got - frozenset(wanted))
            parts = [
                f"missing {missing}" if missing else "",
                f"unexpected {extra}" if extra else "",
            ]
            problems.append(f"{key}: " + ", ".join(part for part in parts if part))
    if expect.redact is not None and tuple(expect.redact) != decision.redact:
        problems.append(f"redact: expected {expect.redact}, got {list(decision.redact)}")
    if expect.reask is not None and expect.reask != decision.reask:
        problems.append(f"reask: expected {expect.reask!r}, got {decision.reask!r}")
    return problems


async def evaluate_fixture(engine: PolicyEngine, fixture: Fixture) -> FixtureResult:
    """Evaluate one fixture on a loaded engine and compare with its expectation."""
    decision: Decision | None = None
    error: str | None = None
    error_kind: str | None = None
    try:
        decision = await engine.evaluate(fixture.phase, fixture.document())
    except PolicyEvaluationFailed as failure:
        error, error_kind = str(failure), "evaluation"
    problems = _mismatches(fixture.expect, decision, error_kind)
    return FixtureResult(fixture, decision, error, error_kind, tuple(problems))


async def run_folder(engine: PolicyEngine, folder: PolicyFolder) -> list[FixtureResult]:
    """Load the folder's policy once, then evaluate every fixture.

    A compile error is the outcome of every fixture: those expecting
    `error: compile` pass, the others fail with the compiler's message.
    """
    try:
        await engine.load(folder.modules, folder.data)
    except PolicyCompileError as failure:
        results = []
        for fixture in folder.fixtures:
            problems = _mismatches(fixture.expect, None, "compile")
            results.append(FixtureResult(fixture, None, str(failure), "compile", tuple(problems)))
        if not folder.fixtures:
            raise
        return results
    return [await evaluate_fixture(engine, fixture) for fixture in folder.fixtures]


async def time_fixture(engine: PolicyEngine, fixture: Fixture, repetitions: int) -> float | None:
    """Median microseconds of one evaluation of the fixture; None if it does not evaluate.

    The whole call the sidecar makes (input encoding, the engine's round
    trip, decision parsing), on an engine that already has the policy loaded.
    """
    document = fixture.document()
    samples: list[float] = []
    for _ in range(repetitions):
        start = time.perf_counter()
        try:
            await engine.evaluate(fixture.phase, document)
        except PolicyEvaluationFailed:
            return None
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples) if samples else None


@contextlib.asynccontextmanager
async def open_engine(kind: EngineKind, opa_url: str | None) -> AsyncIterator[PolicyEngine]:
    """An unloaded engine of the given kind; for `opa` without a URL, a local server."""
    if kind is EngineKind.EMBEDDED:
        from execguard.sidecar.policy.embedded import EmbeddedEngine

        embedded = EmbeddedEngine()
        try:
            yield embedded
        finally:
            await embedded.close()
        return
    from execguard.sidecar.policy.opa_server import OpaServerEngine, OpaServerSettings

    with contextlib.ExitStack() as stack:
        if opa_url is None:
            # Development convenience: the opa built by hack/build-binaries.sh.
            from execguard.devkit.opa_process import OpaProcess

            server = stack.enter_context(OpaProcess())
            opa_url = server.url
        engine = OpaServerEngine(OpaServerSettings.from_url(opa_url))
        try:
            yield engine
        finally:
            await engine.close()
