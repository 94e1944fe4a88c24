"""`execguard policy ...`: test and evaluate Rego policies locally.

Exit codes: 0 all fixtures pass (or `eval` succeeded), 1 a fixture did not
get its expected decision, 2 the policy, the fixtures or the engine are
unusable (the message says which file and line).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Final, cast

import typer
from rich.console import Console
from rich.table import Table

from execguard.cli.policy_fixtures import FixtureError, load_input_document, load_policy_folder
from execguard.cli.policy_runs import (
    EngineKind,
    FixtureResult,
    open_engine,
    run_folder,
    time_fixture,
)
from execguard.sidecar.policy.decision import Decision
from execguard.sidecar.policy.errors import PolicyError
from execguard.sidecar.policy.phases import Phase

app = typer.Typer(help="Test and evaluate execguard policies locally.", no_args_is_help=True)

EXIT_MISMATCH: Final = 1
EXIT_UNUSABLE: Final = 2

EngineOption = Annotated[
    EngineKind,
    typer.Option(
        "--engine",
        help="embedded (regorus in a worker process, as in the sidecar) or opa (an OPA server).",
    ),
]
OpaUrlOption = Annotated[
    str | None,
    typer.Option(
        "--opa-url",
        help="OPA server for --engine opa, e.g. http://127.0.0.1:8181. "
        "Without it a local opa built by hack/build-binaries.sh is started.",
    ),
]


def _decision_text(result: FixtureResult) -> str:
    if result.error_kind is not None:
        return f"{result.error_kind} error"
    decision = result.decision
    assert decision is not None
    verdict = "allow" if decision.allowed else "deny"
    details = sorted(decision.deny) + [f"warn: {w}" for w in sorted(decision.warn)]
    return verdict + (f" ({'; '.join(details)})" if details else "")


def _print_results(
    console: Console,
    results: list[FixtureResult],
    engine: EngineKind,
    timings: list[float | None] | None,
) -> None:
    table = Table(title=f"policy test ({engine.value} engine)", show_lines=False)
    table.add_column("result")
    table.add_column("fixture")
    table.add_column("phase")
    table.add_column("decision", overflow="fold")
    table.add_column("mismatch", overflow="fold")
    if timings is not None:
        table.add_column("µs (median)", justify="right")
    for index, result in enumerate(results):
        row = [
            "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]",
            f"{result.fixture.name}\n[dim]{result.fixture.source}[/dim]",
            result.fixture.phase,
            _decision_text(result),
            "\n".join([*result.mismatches, *([result.error] if result.error else [])]),
        ]
        if timings is not None:
            timing = timings[index]
            row.append("-" if timing is None else f"{timing:.0f}")
        table.add_row(*row)
    console.print(table)
    failed = sum(not result.passed for result in results)
    summary = f"{len(results) - failed} passed, {failed} failed"
    console.print(f"[red]{summary}[/red]" if failed else f"[green]{summary}[/green]")


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=EXIT_UNUSABLE)


@app.command("test")
def run_fixture_tests(
    path: Annotated[Path, typer.Argument(help="Policy folder with *.rego and *_test.yaml|jsonl.")],
    engine: EngineOption = EngineKind.EMBEDDED,
    opa_url: OpaUrlOption = None,
    timing: Annotated[
        int,
        typer.Option(
            "--timing",
            min=0,
            help="Also evaluate each fixture this many times and show the median "
            "microseconds per evaluation (0: off).",
        ),
    ] = 0,
) -> None:
    """Run a policy against recorded fixtures; non-zero exit on any mismatch."""
    try:
        folder = load_policy_folder(path)
    except (FixtureError, OSError) as error:
        raise _fail(str(error)) from None
    if not folder.fixtures:
        raise _fail(f"{path}: no fixture files (*_test.yaml, *_test.yml, *_test.jsonl) found")

    async def run() -> tuple[list[FixtureResult], list[float | None] | None]:
        async with open_engine(engine, opa_url) as policy_engine:
            results = await run_folder(policy_engine, folder)
            if not timing:
                return results, None
            timings = [
                await time_fixture(policy_engine, result.fixture, timing)
                if result.decision is not None
                else None
                for result in results
            ]
            return results, timings

    try:
        results, timings = asyncio.run(run())
    except (PolicyError, ValueError, RuntimeError) as error:
        raise _fail(str(error)) from None
    _print_results(Console(), results, engine, timings)
    if not all(result.passed for result in results):
        raise typer.Exit(code=EXIT_MISMATCH)


def _decision_json(decision: Decision) -> str:
    return json.dumps(
        {
            "allowed": decision.allowed,
            "deny": sorted(decision.deny),
            "warn": sorted(decision.warn),
            "redact": list(decision.redact),
            "reask": decision.reask,
        },
        indent=2,
    )


@app.command("eval")
def eval_(
    path: Annotated[Path, typer.Argument(help="Policy folder or a single .rego file.")],
    input_file: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="JSON or YAML file with input.* fields, or '-' for stdin."
        ),
    ],
    phase: Annotated[str, typer.Option("--phase", help="request, response or stream.")] = "request",
    engine: EngineOption = EngineKind.EMBEDDED,
    opa_url: OpaUrlOption = None,
) -> None:
    """Evaluate a policy for one input and print the decision as JSON."""
    if phase not in ("request", "response", "stream"):
        raise _fail(f"--phase must be request, response or stream, got {phase!r}")
    checked_phase = cast(Phase, phase)
    try:
        folder = load_policy_folder(path)
        if input_file == "-":
            document = load_input_document(None, sys.stdin.read(), checked_phase)
        else:
            document = load_input_document(Path(input_file), None, checked_phase)
    except (FixtureError, OSError) as error:
        raise _fail(str(error)) from None

    async def run() -> Decision:
        async with open_engine(engine, opa_url) as policy_engine:
            await policy_engine.load(folder.modules, folder.data)
            return await policy_engine.evaluate(checked_phase, document)

    try:
        decision = asyncio.run(run())
    except (PolicyError, ValueError, RuntimeError) as error:
        raise _fail(str(error)) from None
    typer.echo(_decision_json(decision))
