"""The evaluation worker process: `python -m execguard.sidecar.policy.worker_main`.

Started and owned by `worker_process.WorkerProcess`; speaks the frames of
`worker_protocol` on the stdin/stdout it was given, one request at a time.

regorus answers every evaluation. When it fails at runtime, rego-cpp (built
from the same program on first need) answers instead, because regorus turns
a failing built-in into an error where OPA — and rego-cpp — make the
expression undefined. Only when both fail is the evaluation a failure (with
regorus's message, which names module and line).

Native code in either engine may write to stdout; the protocol therefore
runs on private copies of the two descriptors, and fd 1 is pointed at stderr.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
from typing import Final

from execguard.sidecar.policy.errors import PolicyCompileError, PolicyEvaluationFailed
from execguard.sidecar.policy.phases import PHASES, Phase
from execguard.sidecar.policy.regorus_program import (
    RegorusCompileError,
    RegorusProgram,
    RegorusRuntimeError,
)
from execguard.sidecar.policy.worker_protocol import (
    COMPILE_ERROR,
    EVAL,
    EVAL_FAILED,
    LOAD,
    LOADED,
    RESULT,
    read_frame_blocking,
    write_frame_blocking,
)

_PR_SET_PDEATHSIG: Final = 1  # from <linux/prctl.h>


class _Loaded:
    """The program currently installed: regorus, plus rego-cpp built lazily."""

    def __init__(self, modules: dict[str, str], data_json: str) -> None:
        self.modules = modules
        self.data_json = data_json
        self.regorus = RegorusProgram(modules, data_json)
        self._fallback: object = None  # RegoCppProgram, or the error building it

    def fallback_value(self, phase: Phase, input_json: str) -> str:
        """rego-cpp's decision for the phase as JSON; raises PolicyError if it cannot answer."""
        # Imported on first need: most policies never fail at runtime.
        from execguard.sidecar.policy.rego_cpp_program import UNDEFINED, RegoCppProgram

        if self._fallback is None:
            try:
                self._fallback = RegoCppProgram(self.modules, self.data_json)
            except PolicyCompileError as error:
                self._fallback = error
        if isinstance(self._fallback, PolicyCompileError):
            raise self._fallback
        assert isinstance(self._fallback, RegoCppProgram)
        value = self._fallback.evaluate(phase, json.loads(input_json))
        # The decision rule is always defined; null tells the sidecar it was not.
        return json.dumps(None if value is UNDEFINED else value, ensure_ascii=False)


def _load(payload: bytes) -> tuple[_Loaded | None, bytes, bytes]:
    request = json.loads(payload)
    try:
        loaded = _Loaded(request["modules"], request["data"])
    except RegorusCompileError as error:
        problem = error.problem
        body = {"message": problem.message, "module": problem.module, "line": problem.line}
        return None, COMPILE_ERROR, json.dumps(body).encode()
    return loaded, LOADED, b""


def _evaluate(loaded: _Loaded | None, payload: bytes) -> tuple[bytes, bytes]:
    if loaded is None:
        return EVAL_FAILED, b"no policy is loaded into the worker"
    phase_bytes, _, input_bytes = payload.partition(b"\n")
    phase = phase_bytes.decode()
    if phase not in PHASES:
        return EVAL_FAILED, f"unknown phase {phase!r}".encode()
    input_json = input_bytes.decode()
    try:
        return RESULT, loaded.regorus.evaluate(phase, input_json).encode()
    except RegorusRuntimeError as error:
        problem = error.problem
        where = f"{problem.module}:{problem.line}: " if problem.module else ""
        message = f"data.execguard.{phase} failed to evaluate: {where}{problem.message}"
    try:
        return RESULT, loaded.fallback_value(phase, input_json).encode()
    except (PolicyCompileError, PolicyEvaluationFailed):
        return EVAL_FAILED, message.encode()


def serve(read_fd: int, write_fd: int) -> None:
    """Answer requests until the sidecar closes the stream."""
    loaded: _Loaded | None = None
    while (frame := read_frame_blocking(read_fd)) is not None:
        tag, payload = frame
        if tag == LOAD:
            candidate, reply_tag, reply = _load(payload)
            # A failed load keeps the last good program, like the engine.
            loaded = candidate or loaded
        elif tag == EVAL:
            reply_tag, reply = _evaluate(loaded, payload)
        else:
            reply_tag, reply = EVAL_FAILED, f"unknown request {tag!r}".encode()
        write_frame_blocking(write_fd, reply_tag, reply)


def _die_with_parent() -> None:
    """Have the kernel kill this worker when the sidecar dies (Linux only).

    End of stream already ends an idle worker; this also ends one stuck in a
    runaway evaluation, which would otherwise burn a core as an orphan.
    """
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the sidecar died before the request took effect
        os._exit(1)


def main() -> None:
    """Take the protocol descriptors private, then serve."""
    _die_with_parent()
    read_fd = os.dup(0)
    write_fd = os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = sys.stderr
    # A broken pipe means the sidecar went away: nobody is left to answer.
    with contextlib.suppress(BrokenPipeError):
        serve(read_fd, write_fd)


if __name__ == "__main__":
    main()
