"""Splitting a Server-Sent Events byte stream into events, and writing events."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import JsonValue

MAX_EVENT_BYTES = 1_048_576


class SseProtocolError(Exception):
    """The upstream stream is not well-formed SSE (or an event is absurdly large)."""


@dataclass(frozen=True)
class SseEvent:
    """One event: its `data` lines joined with newlines, and the raw block."""

    data: str | None
    raw: bytes


class SseParser:
    """Incremental parser: feed bytes, get the events completed so far."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Events completed by this chunk, in order."""
        buffer = self._buffer + chunk
        held = b""
        if buffer.endswith(b"\r"):
            # a CRLF may be split across chunks; decide once the next byte is here
            buffer, held = buffer[:-1], b"\r"
        buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *blocks, rest = buffer.split(b"\n\n")
        if len(rest) > MAX_EVENT_BYTES:
            raise SseProtocolError(f"an SSE event exceeds {MAX_EVENT_BYTES} bytes")
        self._buffer = rest + held
        return [_parse_block(block) for block in blocks if block.strip(b"\n")]

    def finish(self) -> list[SseEvent]:
        """Whatever complete-looking event remains at the end of the stream."""
        rest, self._buffer = self._buffer.strip(b"\r\n"), b""
        return [_parse_block(rest)] if rest else []


def _parse_block(block: bytes) -> SseEvent:
    data_lines: list[str] = []
    for line in block.decode("utf-8", errors="replace").split("\n"):
        if line.startswith("data:"):
            value = line[5:]
            data_lines.append(value[1:] if value.startswith(" ") else value)
    return SseEvent(data="\n".join(data_lines) if data_lines else None, raw=block)


def encode_data(value: JsonValue | str) -> bytes:
    """One `data:` event carrying a JSON value (or a literal such as [DONE])."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


DONE = encode_data("[DONE]")


def error_event(code: str, message: str, *, reasons: list[str], decision_id: str | None) -> bytes:
    """The final event that tells an SSE client why its stream was ended."""
    error: dict[str, JsonValue] = {"type": code, "message": message, "reasons": list(reasons)}
    if decision_id is not None:
        error["decision_id"] = decision_id
    return encode_data({"error": error})
