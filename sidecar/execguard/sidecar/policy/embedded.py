"""The embedded engine: Rego evaluated in-process by rego-cpp (`regopy`).

Why rego-cpp: it is maintained by Microsoft, ships manylinux wheels with no
extra runtime, compiles a policy set into a bundle once and evaluates it in
well under a millisecond; the conformance suite checks it against OPA.

Design decisions:

* **Compile once per `load`.** Modules, the shipped library and data are
  built into a rego-cpp bundle; `evaluate` only sets the input and runs a
  pre-planned entrypoint.
* **One worker thread per compiled bundle.** rego-cpp interpreters are not
  shared between threads, and ctypes releases the GIL during evaluation, so
  the event loop keeps serving while Rego runs.
* **Bounded evaluation.** A native call cannot be interrupted, so a run
  past `eval_timeout` fails the request (`PolicyEvaluationFailed`), and the
  busy worker is abandoned and replaced by a fresh one compiled from the
  same program. Abandoned workers are counted; past `max_abandoned` the
  engine reports `PolicyUnavailable` instead of starting more threads.
* **Never query a failed build.** rego-cpp 1.x can return a bundle that
  did not build (for example "Unable to unify due to cycle"), and querying
  it crashes the process with a segmentation fault; `load` checks the
  bundle and reports its errors with module and line instead.
* **Strings escaped on the way in.** rego-cpp 1.x keeps string values in
  their escaped source form (a literal `"a\\"b"` is stored with the
  backslash) but stores strings from a Python input object raw, so a policy
  literal containing a quote or backslash never equals the same text from the
  input, and results quoting such input are not valid JSON. Handing the input
  over with every string pre-escaped (as rego-cpp's own JSON parser would
  store it) makes both agree, and results come back as valid JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, cast

from regopy import Bundle, Input, Interpreter, LogLevel, RegoError

from execguard.sidecar.policy.decision import Decision
from execguard.sidecar.policy.errors import (
    PolicyCompileError,
    PolicyEvaluationFailed,
    PolicyUnavailable,
)
from execguard.sidecar.policy.input import Phase, PolicyInput
from execguard.sidecar.policy.library import with_library
from execguard.sidecar.policy.limits import (
    EngineLimits,
    check_modules,
    encode_data,
    input_value,
)
from execguard.sidecar.policy.rego_cpp_errors import bundle_problem, parse_problems
from execguard.sidecar.policy.results import PHASES, decision_from_value, phase_path

T = TypeVar("T")


def _escaped(value: object) -> object:
    """Every string (keys included) in the escaped form rego-cpp stores internally."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    if isinstance(value, dict):
        return {_escaped(key): _escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    return value


_Job = tuple[Callable[[], object], asyncio.Future[object], asyncio.AbstractEventLoop]


class _DaemonThread:
    """One daemon thread running jobs in order, answering through asyncio futures.

    Not a ThreadPoolExecutor: the interpreter joins executor threads at exit,
    so one runaway Rego evaluation would hold up the sidecar's shutdown
    until it finished. A daemon thread is simply dropped at exit.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # The job on the thread right now; read from the loop to tell a stuck
        # evaluation (abandon the thread) from one still queued (cancel it).
        self.current: asyncio.Future[object] | None = None
        self._thread = threading.Thread(target=self._run, name="execguard-rego", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, future, loop = job
            if future.cancelled():
                continue
            self.current = future
            try:
                result = fn()
            except BaseException as error:  # handed to the awaiting coroutine
                _post(loop, _settle_error, future, error)
            else:
                _post(loop, _settle, future, result)
            finally:
                self.current = None

    def submit(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """Queue `fn(*args)`; the returned future resolves on the caller's loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((lambda: fn(*args), cast("asyncio.Future[object]", future), loop))
        return future

    def stop(self) -> None:
        """Finish the queued jobs, then end the thread."""
        self._jobs.put(None)


def _post(
    loop: asyncio.AbstractEventLoop,
    settle: Callable[[asyncio.Future[object], Any], None],
    future: asyncio.Future[object],
    value: object,
) -> None:
    # An abandoned evaluation may end after its event loop closed; nobody waits then.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle, future, value)


def _settle(future: asyncio.Future[object], result: object) -> None:
    if not future.done():
        future.set_result(result)


def _settle_error(future: asyncio.Future[object], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


@dataclass(frozen=True)
class _Program:
    """Everything one compile needs: all modules (library included) and data."""

    modules: dict[str, str]
    data_json: str


@dataclass
class _Worker:
    """One interpreter with its compiled bundle, used only from its own thread."""

    program: _Program
    thread: _DaemonThread = field(default_factory=lambda: _DaemonThread())
    interpreter: Interpreter | None = None
    bundle: Bundle | None = None

    def compile(self) -> None:
        """Build the bundle (runs on the worker thread)."""
        interpreter = Interpreter()
        # rego-cpp prints errors to stdout at the default level; we report them.
        interpreter.log_level = LogLevel.NONE
        try:
            for name, source in self.program.modules.items():
                interpreter.add_module(name, source)
            interpreter.add_data_json(self.program.data_json)
            bundle = interpreter.build(None, [phase_path(phase) for phase in PHASES])
        except RegoError as error:
            problems = parse_problems(str(error), self.program.modules)
            first = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise PolicyCompileError(
                f"{first.message}{more}", module=first.module, line=first.line
            ) from error
        if not bundle.ok():
            first, count = bundle_problem(bundle, self.program.modules)
            more = f" (and {count - 1} more)" if count > 1 else ""
            raise PolicyCompileError(f"{first.message}{more}", module=first.module, line=first.line)
        self.interpreter = interpreter
        self.bundle = bundle

    def evaluate(self, phase: Phase, value: object) -> object:
        """Run one phase's entrypoint for the input (runs on the worker thread)."""
        if self.interpreter is None or self.bundle is None:
            raise PolicyUnavailable("the embedded engine's worker has not compiled its bundle")
        try:
            self.interpreter.set_input(Input(_escaped(value)))
            output = self.interpreter.query_bundle_entrypoint(self.bundle, phase_path(phase))
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
        return expressions[0] if expressions else _UNDEFINED

    def submit(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """Schedule `fn(*args)` on this worker's thread."""
        return self.thread.submit(fn, *args)

    def close(self) -> None:
        """Stop accepting work; a running evaluation finishes in the background."""
        self.thread.stop()


_UNDEFINED: Final = object()


class EmbeddedEngine:
    """In-process Rego through rego-cpp; see the module docstring for the design."""

    def __init__(
        self,
        limits: EngineLimits | None = None,
        *,
        max_abandoned: int = 2,
    ) -> None:
        self._limits = limits or EngineLimits()
        self._max_abandoned = max_abandoned
        self._worker: _Worker | None = None
        self._abandoned: set[asyncio.Future[object]] = set()
        self._lock = asyncio.Lock()

    @property
    def limits(self) -> EngineLimits:
        """The limits this engine enforces."""
        return self._limits

    async def load(self, modules: dict[str, str], data: dict[str, object]) -> None:
        """Compile the modules with the library and data; replace the running set on success."""
        check_modules(modules, self._limits)
        program = _Program(
            modules=with_library(modules),
            data_json=encode_data(data, self._limits),
        )
        worker = await self._compile(program)
        async with self._lock:
            previous, self._worker = self._worker, worker
        if previous is not None:
            previous.close()

    async def _compile(self, program: _Program) -> _Worker:
        worker = _Worker(program)
        try:
            await asyncio.wait_for(worker.submit(worker.compile), self._limits.load_timeout)
        except TimeoutError as error:
            worker.close()
            raise PolicyUnavailable(
                f"compiling the policy took longer than {self._limits.load_timeout}s"
            ) from error
        except BaseException:
            worker.close()
            raise
        return worker

    async def evaluate(self, phase: Phase, document: PolicyInput) -> Decision:
        """Evaluate `data.execguard.<phase>`; bounded by `limits.eval_timeout`."""
        if phase not in PHASES:
            raise PolicyEvaluationFailed(f"unknown phase {phase!r}; expected one of {PHASES}")
        value = input_value(document)
        worker = await self._ready_worker()
        job = worker.submit(worker.evaluate, phase, value)
        try:
            result = await asyncio.wait_for(asyncio.shield(job), self._limits.eval_timeout)
        except TimeoutError as error:
            if worker.thread.current is job:
                await self._abandon(worker, job)
            else:
                job.cancel()
            raise PolicyEvaluationFailed(
                f"data.execguard.{phase} did not finish within {self._limits.eval_timeout}s"
            ) from error
        if result is _UNDEFINED:
            return decision_from_value(phase, None, defined=False)
        return decision_from_value(phase, result)

    async def _ready_worker(self) -> _Worker:
        async with self._lock:
            worker = self._worker
            if worker is None:
                raise PolicyUnavailable("no policy is loaded into the embedded engine")
            if worker.interpreter is not None:
                return worker
            # A replacement after an abandoned evaluation: compile it on first use.
            if len(self._abandoned) >= self._max_abandoned:
                raise PolicyUnavailable(
                    f"{len(self._abandoned)} policy evaluations are still running past their "
                    "time budget; not starting another until they finish"
                )
            self._worker = await self._compile(worker.program)
            return self._worker

    async def _abandon(self, worker: _Worker, job: asyncio.Future[object]) -> None:
        async with self._lock:
            if self._worker is worker:
                # Same program, fresh thread and interpreter, compiled lazily.
                self._worker = _Worker(worker.program)
            self._abandoned.add(job)
            job.add_done_callback(self._abandoned.discard)
            # Consume the eventual result so it is not reported as never retrieved.
            job.add_done_callback(lambda done: done.cancelled() or done.exception())
        worker.close()

    async def close(self) -> None:
        """Release the worker thread and the compiled bundle."""
        async with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()
