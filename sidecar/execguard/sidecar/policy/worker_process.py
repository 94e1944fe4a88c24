"""The sidecar's handle on one evaluation worker process (see `worker_main`).

The worker is a child process, not a thread, because regorus holds the GIL
while it evaluates: in-process, a runaway policy would freeze the event loop,
and a crash in native code would take the sidecar down. Across a pipe the
event loop stays free, a deadline is enforced by killing the process, and a
crash is one failed request.

The pipe is read by a subprocess protocol that cuts frames as bytes arrive
and hands each to the request waiting for it, rather than through stream
readers: that halves the cost of a round trip, which is most of what a
cheap evaluation costs.
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
    FrameDecoder,
    ProtocolError,
    encode_frame,
)

_MODULE: Final = "execguard.sidecar.policy.worker_main"
_EXIT_GRACE: Final = 0.5  # seconds to wait for a worker whose stream closed to be reaped
_STDOUT: Final = 1
_READ_SIZE: Final = 64 * 1024


class WorkerGone(Exception):
    """The worker process exited, or its stream broke, mid-request."""


class _WorkerPipes(asyncio.SubprocessProtocol):
    """Frames from the worker's stdout, each handed to the request awaiting it."""

    def __init__(self) -> None:
        self._decoder = FrameDecoder()
        self._waiter: asyncio.Future[tuple[bytes, bytes]] | None = None
        # Set once the stream can no longer be trusted; every later request fails with it.
        self.broken: BaseException | None = None
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def expect_reply(self) -> asyncio.Future[tuple[bytes, bytes]]:
        """A future for the next frame (one request in flight at a time)."""
        waiter = asyncio.get_running_loop().create_future()
        if self.broken is not None:
            waiter.set_exception(self.broken)
        else:
            self._waiter = waiter
        return waiter

    def _fail(self, error: BaseException) -> None:
        if self.broken is None:
            self.broken = error
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd != _STDOUT:
            return
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as error:
            self._fail(error)
            return
        for frame in frames:
            waiter, self._waiter = self._waiter, None
            if waiter is None or waiter.done():
                # Nobody asked (the asker was cancelled): replies are out of step now.
                self._fail(ProtocolError("a frame arrived that no request was waiting for"))
                return
            waiter.set_result(frame)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == _STDOUT:
            self._fail(ConnectionError("the worker closed its stream"))

    def process_exited(self) -> None:
        self._fail(ConnectionError("the worker exited"))
        if not self.exited.done():
            self.exited.set_result(None)


class WorkerProcess:
    """One running worker: start, load, evaluate (one request at a time), stop."""

    def __init__(self, transport: asyncio.SubprocessTransport, pipes: _WorkerPipes) -> None:
        self._transport = transport
        self._pipes = pipes
        self.pid = transport.get_pid()

    @classmethod
    async def start(cls) -> WorkerProcess:
        """Spawn a worker with the sidecar's interpreter and import path."""
        # Rust backtraces would bloat every error message; the worker reports lines.
        env = {
            **os.environ,
            "RUST_BACKTRACE": "0",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
        loop = asyncio.get_running_loop()
        try:
            transport, pipes = await loop.subprocess_exec(
                _WorkerPipes,
                sys.executable,
                "-m",
                _MODULE,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=None,
                env=env,
            )
        except OSError as error:
            raise PolicyUnavailable(f"cannot start the policy worker process: {error}") from error
        stdout = transport.get_pipe_transport(_STDOUT)
        if stdout is not None and hasattr(stdout, "max_size"):
            # asyncio reads a pipe 256 KiB at a time: a buffer that size is mmapped
            # and unmapped per read, page faults on every evaluation. Replies are small.
            stdout.max_size = _READ_SIZE
        return cls(transport, pipes)

    async def _exchange(self, tag: bytes, payload: bytes) -> tuple[bytes, bytes]:
        reply = self._pipes.expect_reply()
        try:
            stdin = self._transport.get_pipe_transport(0)
            if stdin is None or stdin.is_closing():
                raise ConnectionError("the worker's input is closed")
            assert isinstance(stdin, asyncio.WriteTransport)
            stdin.write(encode_frame(tag, payload))
            return await reply
        except (ConnectionError, ProtocolError) as error:
            # A closed stream usually means the process died; its status says how.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._pipes.exited), _EXIT_GRACE)
            raise WorkerGone(self._exit_description()) from error
        finally:
            if not reply.done():
                reply.cancel()

    def _exit_description(self) -> str:
        code = self._transport.get_returncode()
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

    async def evaluate(self, phase: str, input_json: str) -> object:
        """The JSON value of the phase's decision rule; a runtime error raises."""
        tag, payload = await self._exchange(EVAL, f"{phase}\n{input_json}".encode())
        if tag == EVAL_FAILED:
            raise PolicyEvaluationFailed(payload.decode(errors="replace"))
        if tag != RESULT:
            raise PolicyUnavailable(f"the policy worker answered an evaluation with {tag!r}")
        try:
            return json.loads(payload)
        except ValueError as error:
            # The frame was read whole, so the stream is still in step.
            raise PolicyEvaluationFailed(
                f"data.execguard.{phase}: the policy worker's answer is unreadable: {error}"
            ) from error

    async def stop(self) -> None:
        """End the worker now (SIGKILL: it may be stuck in native code) and reap it."""
        with contextlib.suppress(ProcessLookupError):
            self._transport.kill()
        await asyncio.shield(self._pipes.exited)
        self._transport.close()
