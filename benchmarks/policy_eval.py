"""Per-evaluation latency of the embedded engine and an OPA server for the
example policies, on the inputs recorded in their fixtures, in one run.

    .venv/bin/python benchmarks/policy_eval.py [--iterations 2000] [--rounds 5]
                                               [--pin CPU] [--no-opa]

For each engine and example: p50 and p99 of `engine.evaluate` (the whole
call the sidecar makes: input encoding, the round trip to the evaluation
worker or to OPA, evaluation, decision parsing), the same engine's baseline
in this run (a one-rule policy on the same inputs: what the round trip alone
costs, and how much of the tail is the machine), and the ratio of p50 to it.
Ratios, not absolute times, are what compare across machines.

A round measures the baseline and then the example, `--iterations` each;
the figures are the median over `--rounds` rounds, with the worst round's
p99 beside them, because on a shared virtual machine one round can catch a
stall of the host. `--pin CPU` runs this process, and with it the
evaluation worker, on one CPU, as in a sidecar container limited to one
CPU; without it the kernel places the worker freely, and a wake-up of an
idle virtual CPU adds to the tail. The embedded engine's worker memory is
printed after its rows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path

from execguard.cli.policy_fixtures import PolicyFolder, load_policy_folder
from execguard.sidecar.policy.embedded import EmbeddedEngine
from execguard.sidecar.policy.engine import PolicyEngine
from execguard.sidecar.policy.input import PolicyInput
from execguard.sidecar.policy.opa_server import OpaServerEngine, OpaServerSettings
from execguard.sidecar.policy.phases import Phase

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "policies"

BASELINE = {
    phase + ".rego": f'package execguard.{phase}\nimport rego.v1\ndeny contains "x" if false\n'
    for phase in ("request", "response")
}


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    engine: PolicyEngine,
    modules: dict[str, str],
    data: dict[str, object],
    inputs: list[tuple[Phase, PolicyInput]],
    iterations: int,
) -> list[float]:
    """Microseconds per `evaluate`, cycling through the inputs."""
    await engine.load(modules, data)
    for phase, document in inputs[: min(50, len(inputs))] * 4:  # warm up
        await engine.evaluate(phase, document)
    samples: list[float] = []
    for index in range(iterations):
        phase, document = inputs[index % len(inputs)]
        start = time.perf_counter()
        await engine.evaluate(phase, document)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MiB, from /proc."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def inputs_of(folder: PolicyFolder) -> list[tuple[Phase, PolicyInput]]:
    return [(fixture.phase, fixture.document()) for fixture in folder.fixtures]


async def bench_engine(name: str, engine: PolicyEngine, iterations: int, rounds: int) -> None:
    folders = [load_policy_folder(path) for path in sorted(EXAMPLES.iterdir()) if path.is_dir()]
    try:
        for folder in folders:
            inputs = inputs_of(folder)
            base_p50s: list[float] = []
            base_p99s: list[float] = []
            p50s: list[float] = []
            p99s: list[float] = []
            for _ in range(rounds):
                baseline = await measure(engine, BASELINE, {}, inputs, iterations)
                samples = await measure(engine, folder.modules, folder.data, inputs, iterations)
                base_p50s.append(statistics.median(baseline))
                base_p99s.append(quantile(baseline, 0.99))
                p50s.append(statistics.median(samples))
                p99s.append(quantile(samples, 0.99))
            p50 = statistics.median(p50s)
            base_p50 = statistics.median(base_p50s)
            print(
                f"{name:9} {folder.root.name:18} p50 {p50:6.0f} us  "
                f"p99 {statistics.median(p99s):6.0f} us (worst round {max(p99s):6.0f})  "
                f"baseline p50 {base_p50:5.0f} p99 {statistics.median(base_p99s):5.0f} us  "
                f"ratio p50 {p50 / base_p50:5.2f}",
                flush=True,
            )
        if isinstance(engine, EmbeddedEngine):
            # The embedded engine evaluates in worker processes: their memory is its cost.
            for pid in engine.worker_pids():
                current, peak = rss_mib(pid)
                print(f"{name:9} worker {pid} RSS {current:.1f} MiB (peak {peak:.1f} MiB)")
    finally:
        await engine.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pin", type=int, metavar="CPU", help="Run on this CPU only.")
    parser.add_argument("--no-opa", action="store_true", help="Only the embedded engine.")
    args = parser.parse_args()
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})  # the worker processes inherit it
    placement = f"pinned to CPU {args.pin}" if args.pin is not None else "unpinned"
    # Absolute times depend on what else the machine runs; say so in the output.
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, {placement}; "
        f"{args.rounds} rounds x {args.iterations} evaluations",
        flush=True,
    )
    await bench_engine("embedded", EmbeddedEngine(), args.iterations, args.rounds)
    if not args.no_opa:
        from execguard.devkit.opa_process import OpaProcess

        with OpaProcess() as server:
            engine = OpaServerEngine(OpaServerSettings(port=server.port))
            await bench_engine("opa", engine, args.iterations, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
