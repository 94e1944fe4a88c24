"""The conformance suite: every case runs on the embedded engine and on a real
OPA server; both must produce the expected decision, and so each other's.

A known divergence is declared on the case (`known_divergence`) and runs as
a strict xfail, so it is visible in every report and fails the suite the
day the engine starts to agree.
"""

from __future__ import annotations

import pytest
from conformance_suite import Case, Outcome, expected_outcome, load_cases, run_case

from execguard.devkit.opa_process import OpaProcess
from execguard.sidecar.policy.embedded import EmbeddedEngine
from execguard.sidecar.policy.opa_server import OpaServerEngine, OpaServerSettings

CASES = load_cases()


def _params(engine: str) -> list[object]:
    params: list[object] = []
    for case in CASES:
        reason = getattr(case.known_divergence, engine)
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


def _agreement_params() -> list[object]:
    params: list[object] = []
    for case in CASES:
        reasons = [r for r in (case.known_divergence.embedded, case.known_divergence.opa) if r]
        marks = [pytest.mark.xfail(reason="; ".join(reasons), strict=True)] if reasons else []
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


def _diff(case: Case, expected: Outcome, **actual: Outcome) -> str:
    width = max(len("expected"), *(len(name) for name in actual))
    rows = [f"case {case.name} ({case.source}, phase {case.phase})"]
    rows.append(f"  {'expected'.ljust(width)} : {expected.render()}")
    for name, outcome in actual.items():
        mark = "  " if outcome == expected else "≠ "
        rows.append(f"{mark}{name.ljust(width)} : {outcome.render()}")
    return "\n".join(rows)


def test_suite_is_large_enough_and_covers_every_phase() -> None:
    assert len(CASES) >= 60
    assert {case.phase for case in CASES} == {"request", "response", "stream"}


@pytest.mark.parametrize("case", _params("embedded"))
async def test_embedded_engine_gives_expected_decision(case: Case) -> None:
    engine = EmbeddedEngine()
    try:
        outcome = await run_case(engine, case)
    finally:
        await engine.close()
    expected = expected_outcome(case)
    assert outcome == expected, _diff(case, expected, embedded=outcome)


@pytest.mark.opa
@pytest.mark.parametrize("case", _agreement_params())
async def test_embedded_and_opa_agree_with_expected_decision(
    case: Case, opa_server: OpaProcess
) -> None:
    embedded = EmbeddedEngine()
    opa = OpaServerEngine(OpaServerSettings(host=opa_server.host, port=opa_server.port))
    try:
        embedded_outcome = await run_case(embedded, case)
        opa_outcome = await run_case(opa, case)
    finally:
        await embedded.close()
        await opa.close()
    expected = expected_outcome(case)
    agree = (embedded_outcome, opa_outcome) == (expected, expected)
    assert agree, _diff(case, expected, embedded=embedded_outcome, opa=opa_outcome)
