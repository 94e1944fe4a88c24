"""The frames between the sidecar and its evaluation worker process.

A frame is a 4-byte big-endian length, then that many bytes: one tag byte and
a UTF-8 payload. Requests and replies alternate strictly (one request in
flight per worker), so no ids are needed.

Requests:  `L` load  {"modules": {name: source}, "data": "<data JSON text>"}
           `E` eval  "<phase>\\n<input JSON text>"
Replies:   `R` result   JSON of `data.execguard.lib.decision.<phase>` (null if undefined)
           `K` loaded   ""
           `C` compile error  {"message", "module", "line"}
           `F` evaluation failed  "<message>"

Input and result JSON pass through as text: the worker never re-encodes
them, which is most of what a cheap evaluation costs.
"""

from __future__ import annotations

import os
import struct
from typing import Final

LOAD: Final = b"L"
EVAL: Final = b"E"
RESULT: Final = b"R"
LOADED: Final = b"K"
COMPILE_ERROR: Final = b"C"
EVAL_FAILED: Final = b"F"

# A frame past this is a broken stream, not a message (modules and data are
# limited to a few MiB by `EngineLimits`, inputs by the proxy's body limit).
MAX_FRAME: Final = 256 * 1024 * 1024

_HEADER: Final = struct.Struct(">I")


class ProtocolError(Exception):
    """The other side sent something that is not a frame."""


def encode_frame(tag: bytes, payload: bytes) -> bytes:
    """One frame: length, tag, payload."""
    return _HEADER.pack(len(payload) + 1) + tag + payload


def _size(header: bytes) -> int:
    (size,) = _HEADER.unpack(header)
    if not 1 <= size <= MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes")
    return int(size)


class FrameDecoder:
    """Cuts frames out of the bytes of a stream, however the reads split them."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """Take more bytes; return the (tag, payload) of every frame now complete.

        Raises ProtocolError on a length no frame can have.
        """
        self._buffer += data
        frames: list[tuple[bytes, bytes]] = []
        while len(self._buffer) >= _HEADER.size:
            end = _HEADER.size + _size(bytes(self._buffer[: _HEADER.size]))
            if len(self._buffer) < end:
                break
            frames.append(
                (
                    bytes(self._buffer[_HEADER.size : _HEADER.size + 1]),
                    bytes(self._buffer[_HEADER.size + 1 : end]),
                )
            )
            del self._buffer[:end]
        return frames


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame_blocking(fd: int) -> tuple[bytes, bytes] | None:
    """(tag, payload) of the next frame on a file descriptor; None at end of stream."""
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    body = _read_exactly(fd, _size(header))
    if body is None:
        return None
    return body[:1], body[1:]


def write_frame_blocking(fd: int, tag: bytes, payload: bytes) -> None:
    """Write one whole frame to a file descriptor."""
    view = memoryview(encode_frame(tag, payload))
    while view:
        written = os.write(fd, view)
        view = view[written:]
