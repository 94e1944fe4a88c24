"""The sidecar's handle on one evaluation worker process (see `worker_main`).

The worker is a child process, not a thread, because regorus holds the GIL
while it evaluates: in-process, a runaway policy would freeze the event loop,
and a crash in native code would take the sidecar down. Across a pipe the
event loop stays free, a deadline is enforced by killing the process, and a
crash is one failed request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from typing import Final

from execguard.sidecar.policy.errors import (
    PolicyCompileError,
    PolicyEvaluationFailed,
    PolicyUnavailable,
)
from execguard.sidecar.policy.worker_protocol import (
    COMPILE_ERROR,
    EVAL,
    EVAL_FAILED,
    LOAD,
    LOADED,
    RESULT,
    VALUE,
    ProtocolError,
    encode_frame,
    read_frame,
)

_MODULE: Final = "execguard.sidecar.policy.worker_main"
_EXIT_GRACE: Final = 0.5  # seconds to wait for a worker whose stream closed to be reaped


class WorkerGone(Exception):
    """The worker process exited, or its stream broke, mid-request."""


class WorkerProcess:
    """One running worker: start, load, evaluate (one request at a time), stop."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.pid = process.pid

    @classmethod
    async def start(cls) -> WorkerProcess:
        """Spawn a worker with the sidecar's interpreter and import path."""
        # Rust backtraces would bloat every error message; the worker reports lines.
        env = {
            **os.environ,
            "RUST_BACKTRACE": "0",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                _MODULE,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as error:
            raise PolicyUnavailable(f"cannot start the policy worker process: {error}") from error
        return cls(process)

    async def _exchange(self, tag: bytes, payload: bytes) -> tuple[bytes, bytes]:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        try:
            stdin.write(encode_frame(tag, payload))
            await stdin.drain()
            return await read_frame(stdout)
        except (ConnectionError, asyncio.IncompleteReadError, ProtocolError) as error:
            # A closed stream usually means the process died; its status says how.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), _EXIT_GRACE)
            raise WorkerGone(self._exit_description()) from error

    def _exit_description(self) -> str:
        code = self._process.returncode
        if code is None:
            return f"policy worker {self.pid} broke its stream"
        how = f"signal {-code}" if code < 0 else f"status {code}"
        return f"policy worker {self.pid} exited with {how}"

    async def load(self, modules: dict[str, str], data_json: str) -> None:
        """Compile the program in the worker; raises PolicyCompileError with module and line."""
        request = json.dumps({"modules": modules, "data": data_json}, ensure_ascii=False)
        tag, payload = await self._exchange(LOAD, request.encode())
        if tag == COMPILE_ERROR:
            problem = json.loads(payload)
            raise PolicyCompileError(
                problem["message"], module=problem["module"], line=problem["line"]
            )
        if tag != LOADED:
            raise PolicyUnavailable(f"the policy worker answered a load with {tag!r}")

    async def evaluate(self, phase: str, input_json: str) -> tuple[bool, object]:
        """(defined, value) of `data.execguard.<phase>`; a runtime error raises."""
        tag, payload = await self._exchange(EVAL, f"{phase}\n{input_json}".encode())
        if tag == EVAL_FAILED:
            raise PolicyEvaluationFailed(payload.decode(errors="replace"))
        try:
            if tag == RESULT:
                results = json.loads(payload).get("result") or []
                expressions = (results[0].get("expressions") or []) if results else []
                if not expressions:
                    return False, None
                return True, expressions[0]["value"]
            if tag == VALUE:
                answer = json.loads(payload)
                return bool(answer["defined"]), answer.get("value")
        except (ValueError, KeyError, AttributeError, IndexError, TypeError) as error:
            # The frame was read whole, so the stream is still in step.
            raise PolicyEvaluationFailed(
                f"data.execguard.{phase}: the policy worker's answer is unreadable: {error}"
            ) from error
        raise PolicyUnavailable(f"the policy worker answered an evaluation with {tag!r}")

    async def stop(self) -> None:
        """End the worker now (SIGKILL: it may be stuck in native code) and reap it."""
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()
        if self._process.stdin is not None:
            self._process.stdin.close()
        await self._process.wait()
