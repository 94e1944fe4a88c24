"""Latency and throughput the sidecar adds in front of a model, against a same-run baseline.

Starts the scripted model server, then two sidecars in front of it (one without
response validation, one with request rules, response rules and redaction), each
pinned to one CPU core. For small and 32 KiB request bodies, JSON and SSE, it
sends the same load directly to the model (the baseline) and through each
sidecar, and reports p50/p99 latency, the milliseconds added, ratios against the
baseline, requests/s, and the sidecar's resident memory under load.

    .venv/bin/python benchmarks/sidecar_overhead.py [--requests 400] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
MODEL_SERVER = REPO / "examples" / "model_server" / "scripted_model_server.py"

REQUEST_RULE = """package execguard.request

deny contains "too many messages" if count(input.request.body.messages) > 50
"""
RESPONSE_RULE = """package execguard.response

deny contains "leaks a key" if contains(input.response.text, "BEGIN PRIVATE KEY")
"""
STREAM_RULE = """package execguard.stream

deny contains "leaks a key" if contains(input.response.text, "BEGIN PRIVATE KEY")
"""
REDACTION = [
    {
        "name": "email",
        "pattern": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
        "maxMatchChars": 64,
    },
    {"name": "card", "pattern": r"\b(?:\d[ -]?){13,16}\b", "maxMatchChars": 32},
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def pin(cpu: int) -> Any:
    def preexec() -> None:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpu})

    return preexec


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) in KiB from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


@dataclass
class Result:
    latencies_ms: list[float]
    seconds: float
    errors: int

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds


async def load(url: str, body: bytes, *, requests: int, concurrency: int) -> Result:
    latencies: list[float] = []
    errors = 0
    queue = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            for _ in queue:
                started = time.perf_counter()
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Result(latencies, seconds, errors)


def chat_body(size: int, stream: bool) -> bytes:
    filler = "lorem ipsum " * (size // 12) if size else "hello"
    body = {
        "model": "scripted-1",
        "stream": stream,
        "messages": [{"role": "user", "content": filler}],
    }
    return json.dumps(body).encode()


def start_sidecar(
    model_port: int, validated: bool, directory: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port, admin = free_port(), free_port()
    config: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": port},
        "admin": {"host": "127.0.0.1", "port": admin},
        "upstream": {"host": "127.0.0.1", "port": model_port},
        "boundaries": {"maxConcurrentRequests": 256},
        "audit": {"enabled": False},
    }
    if validated:
        config["validation"] = {
            "request": {"rego": {"request.rego": REQUEST_RULE}},
            "response": {
                "rego": {"response.rego": RESPONSE_RULE, "stream.rego": STREAM_RULE},
                "redaction": REDACTION,
            },
        }
    path = directory / f"sidecar-{port}.json"
    path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "execguard.sidecar",
            "--config",
            str(path),
            "--log-level",
            "warning",
        ],
        preexec_fn=pin(1),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(admin)
    return process, port


def start_model() -> tuple[subprocess.Popen[bytes], int]:
    """The scripted model server, pinned to CPU 0, answering 60 words."""
    model_port = free_port()
    model = subprocess.Popen(
        [
            sys.executable,
            str(MODEL_SERVER),
            "--host",
            "127.0.0.1",
            "--port",
            str(model_port),
            "--seed",
            "1",
            "--pii-rate",
            "0.3",
            "--response-words-min",
            "60",
            "--response-words-max",
            "60",
        ],
        preexec_fn=pin(0),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(model_port)
    return model, model_port


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    model, model_port = start_model()
    processes = [model]
    try:
        with tempfile.TemporaryDirectory() as directory:
            plain, plain_port = start_sidecar(model_port, False, Path(directory))
            checked, checked_port = start_sidecar(model_port, True, Path(directory))
            processes += [plain, checked]
            targets = {
                "direct": model_port,
                "sidecar": plain_port,
                "sidecar+validation": checked_port,
            }
            rows = []
            peak = {"sidecar": 0, "sidecar+validation": 0}
            for size_name, size in (("small", 0), ("32KiB", 32 * 1024)):
                for mode in ("json", "sse"):
                    body = chat_body(size, mode == "sse")
                    results: dict[str, Result] = {}
                    for name, port in targets.items():
                        url = f"http://127.0.0.1:{port}/v1/chat/completions"
                        await load(url, body, requests=50, concurrency=args.concurrency)  # warm-up
                        results[name] = await load(
                            url, body, requests=args.requests, concurrency=args.concurrency
                        )
                        if name != "direct":
                            pid = plain.pid if name == "sidecar" else checked.pid
                            peak[name] = max(peak[name], rss_kib(pid)[1])
                    base = results["direct"]
                    for name, result in results.items():
                        rows.append((size_name, mode, name, result, base))
            print(
                f"requests={args.requests} concurrency={args.concurrency} "
                f"(sidecars pinned to CPU 1, model and client on CPU 0)\n"
            )
            header = (
                f"{'body':6} {'mode':4} {'path':19} {'p50 ms':>8} {'p99 ms':>8} "
                f"{'+p50 ms':>8} {'+p99 ms':>8} {'p50 x':>6} {'p99 x':>6} {'req/s':>8} "
                f"{'rps x':>6} {'errors':>6}"
            )
            print(header)
            print("-" * len(header))
            for size_name, mode, name, result, base in rows:
                print(
                    f"{size_name:6} {mode:4} {name:19} {result.p50:8.2f} {result.p99:8.2f} "
                    f"{result.p50 - base.p50:8.2f} {result.p99 - base.p99:8.2f} "
                    f"{result.p50 / base.p50:6.2f} {result.p99 / base.p99:6.2f} "
                    f"{result.rps:8.0f} {result.rps / base.rps:6.2f} {result.errors:6d}"
                )
            print()
            for name, kib in peak.items():
                print(f"peak RSS {name}: {kib / 1024:.1f} MiB")
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
