"""The frames between the sidecar and its evaluation worker process.

A frame is a 4-byte big-endian length, then that many bytes: one tag byte and
a UTF-8 payload. Requests and replies alternate strictly (one request in
flight per worker), so no ids are needed.

Requests:  `L` load  {"modules": {name: source}, "data": "<data JSON text>"}
           `E` eval  "<phase>\\n<input JSON text>"
Replies:   `R` result   regorus's JSON query result {"result": [...]}
           `V` value    {"defined": bool, "value": ...} (from the rego-cpp fallback)
           `K` loaded   ""
           `C` compile error  {"message", "module", "line"}
           `F` evaluation failed  "<message>"

Input and result JSON pass through as text: the worker never re-encodes
them, which is most of what a cheap evaluation costs.
"""

from __future__ import annotations

import asyncio
import os
import struct
from typing import Final

LOAD: Final = b"L"
EVAL: Final = b"E"
RESULT: Final = b"R"
VALUE: Final = b"V"
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


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(tag, payload) of the next frame; `asyncio.IncompleteReadError` at end of stream."""
    body = await reader.readexactly(_size(await reader.readexactly(_HEADER.size)))
    return body[:1], body[1:]


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
