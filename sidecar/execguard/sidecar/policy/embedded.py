"""The embedded engine: Rego evaluated by regorus in a pool of worker processes.

Why regorus (Microsoft's Rust interpreter, the `gordon-to-regorus` build of
it): on the example policies it evaluates several times faster than rego-cpp
(`regopy`), and it passes the conformance cases rego-cpp 1.5 gets wrong
(`(?i)` regexes, `count()` of escaped text, `sprintf` of literal arguments,
comprehensions in functions, unsafe variables, Rego v0 syntax). Measured
figures are in `docs/policy-engines.md`.

Design decisions:

* **Worker processes, not threads.** regorus holds the GIL while evaluating,
  so in-process a slow policy would stall the event loop. Each worker
  (`worker_main`) is a child process reached over a pipe (`worker_protocol`);
  the event loop only waits on a read.
* **Compile once per `load`.** Every worker parses and checks the program
  when it is loaded; `evaluate` sends only the phase and the input JSON. A
  failed load leaves the last good program in place.
* **Bounded evaluation.** Past `eval_timeout` (queueing for a worker
  included) the request fails with `PolicyEvaluationFailed`; the worker is
  killed and a fresh one started and loaded in the background. A worker that
  dies mid-request (a crash in native code) fails that request with
  `PolicyUnavailable` and is replaced the same way; the sidecar survives.
* **OPA's semantics for failing built-ins.** regorus fails a query when a
  built-in fails (`json.unmarshal` of text that is not JSON); OPA makes the
  expression undefined. The worker then asks rego-cpp, built lazily from the
  same program, which follows OPA there (and has `crypto.sha256`, which
  regorus lacks). Only if both fail does the evaluation fail.
* **A small pool.** `workers` processes evaluate concurrently (each one
  request at a time); a request waits for a free worker within its budget.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Final

from execguard.sidecar.policy.decision import Decision
from execguard.sidecar.policy.errors import (
    PolicyCompileError,
    PolicyError,
    PolicyEvaluationFailed,
    PolicyUnavailable,
)
from execguard.sidecar.policy.input import PolicyInput
from execguard.sidecar.policy.library import with_library
from execguard.sidecar.policy.limits import EngineLimits, check_modules, encode_data, encode_input
from execguard.sidecar.policy.phases import PHASES, Phase
from execguard.sidecar.policy.results import decision_from_value
from execguard.sidecar.policy.worker_process import WorkerGone, WorkerProcess

DEFAULT_WORKERS: Final = 1


@dataclass(frozen=True)
class _Program:
    """Everything one compile needs: all modules (library included) and data."""

    modules: dict[str, str]
    data_json: str


class _Slot:
    """A place in the pool; its process is replaced in place when it fails."""

    def __init__(self) -> None:
        self.process: WorkerProcess | None = None
        self.program: _Program | None = None


class EmbeddedEngine:
    """Rego through regorus worker processes; see the module docstring for the design."""

    def __init__(
        self, limits: EngineLimits | None = None, *, workers: int = DEFAULT_WORKERS
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers!r}")
        self._limits = limits or EngineLimits()
        self._slots = [_Slot() for _ in range(workers)]
        self._idle: asyncio.Queue[_Slot] = asyncio.Queue()
        for slot in self._slots:
            self._idle.put_nowait(slot)
        self._program: _Program | None = None
        self._load_lock = asyncio.Lock()
        self._restarts: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def limits(self) -> EngineLimits:
        """The limits this engine enforces."""
        return self._limits

    def worker_pids(self) -> tuple[int, ...]:
        """Process ids of the running workers (for diagnostics and memory accounting)."""
        return tuple(slot.process.pid for slot in self._slots if slot.process is not None)

    async def load(self, modules: dict[str, str], data: dict[str, object]) -> None:
        """Compile the modules with the library and data; replace the running set on success."""
        check_modules(modules, self._limits)
        program = _Program(
            modules=with_library(modules),
            data_json=encode_data(data, self._limits),
        )
        async with self._load_lock:
            # Every worker, so none is mid-evaluation while its program changes.
            slots = [await self._idle.get() for _ in self._slots]
            try:
                # The first worker finds compile errors; the rest load in parallel.
                await self._install(slots[0], program)
                await asyncio.gather(*(self._install(slot, program) for slot in slots[1:]))
                self._program = program
            finally:
                for slot in slots:
                    self._idle.put_nowait(slot)

    async def _install(self, slot: _Slot, program: _Program) -> None:
        """Make the slot's worker run `program`, starting a worker if it has none."""
        if slot.process is not None and slot.program is program:
            return
        try:
            async with asyncio.timeout(self._limits.load_timeout):
                if slot.process is None:
                    slot.process = await WorkerProcess.start()
                    slot.program = None
                await slot.process.load(program.modules, program.data_json)
        except PolicyCompileError:
            raise  # the worker is healthy and keeps its previous program
        except TimeoutError as error:
            await self._discard(slot)
            raise PolicyUnavailable(
                f"compiling the policy took longer than {self._limits.load_timeout}s"
            ) from error
        except WorkerGone as error:
            await self._discard(slot)
            raise PolicyUnavailable(f"the policy worker failed while loading: {error}") from error
        except BaseException:
            await self._discard(slot)
            raise
        slot.program = program

    async def _discard(self, slot: _Slot) -> None:
        process, slot.process, slot.program = slot.process, None, None
        if process is not None:
            await process.stop()

    async def evaluate(self, phase: Phase, document: PolicyInput) -> Decision:
        """The decision of `data.execguard.<phase>`; bounded by `limits.eval_timeout`."""
        if phase not in PHASES:
            raise PolicyEvaluationFailed(f"unknown phase {phase!r}; expected one of {PHASES}")
        input_json = encode_input(document)
        program = self._program
        if program is None or self._closed:
            raise PolicyUnavailable("no policy is loaded into the embedded engine")
        budget = self._limits.eval_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        try:
            # Most evaluations find a free worker; waiting costs a task, so only then.
            slot = self._idle.get_nowait() if not self._idle.empty() else None
            if slot is None:
                slot = await asyncio.wait_for(self._idle.get(), budget)
        except TimeoutError as error:
            raise PolicyEvaluationFailed(
                f"data.execguard.{phase} did not finish within {budget}s (no free policy worker)"
            ) from error
        healthy = True
        try:
            # A worker replaced after a failure may still need this program.
            await self._install(slot, program)
            assert slot.process is not None
            async with asyncio.timeout_at(deadline):
                value = await slot.process.evaluate(phase, input_json)
        except PolicyError:
            raise  # a clean answer (runtime error) or a failed install: nothing to replace
        except TimeoutError as error:
            healthy = False
            raise PolicyEvaluationFailed(
                f"data.execguard.{phase} did not finish within {budget}s"
            ) from error
        except WorkerGone as error:
            healthy = False
            raise PolicyUnavailable(f"the policy worker failed: {error}") from error
        except BaseException:
            healthy = False  # e.g. cancelled mid-exchange: the stream is out of step
            raise
        finally:
            if healthy:
                self._idle.put_nowait(slot)
            else:
                self._replace(slot, program)
        return decision_from_value(phase, value)

    def _replace(self, slot: _Slot, program: _Program) -> None:
        """Kill the slot's worker and start a loaded one in the background."""
        task = asyncio.get_running_loop().create_task(self._restart(slot, program))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _restart(self, slot: _Slot, program: _Program) -> None:
        try:
            await self._discard(slot)
            if not self._closed:
                # A failure here leaves the slot empty; its next user retries.
                with contextlib.suppress(PolicyError):
                    await self._install(slot, self._program or program)
        finally:
            self._idle.put_nowait(slot)

    async def close(self) -> None:
        """Stop every worker process (a running evaluation fails with PolicyUnavailable)."""
        self._closed = True
        self._program = None
        # Restarts are bounded by load_timeout; letting them end reaps their processes.
        await asyncio.gather(*self._restarts, return_exceptions=True)
        for slot in self._slots:
            await self._discard(slot)
