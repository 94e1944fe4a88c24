"""Reading the request body within its size and time limits, and parsing bounded JSON."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from pydantic import JsonValue

from execguard.sidecar.errors import BodyTooLarge, RequestRejected, UnsupportedMediaType

_READ_CHUNK = 64 * 1024


async def read_body(request: web.Request, *, max_bytes: int, deadline_seconds: float) -> bytes:
    """The whole body, refusing as soon as it is known to be larger than `max_bytes`.

    A declared Content-Length over the limit is refused before reading a byte;
    a chunked body is counted while it streams in, so a huge body is never buffered.
    A client that sends its body too slowly is cut off after `deadline_seconds`.
    """
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise BodyTooLarge(
            f"request body of {declared} bytes exceeds the limit of {max_bytes} bytes"
        )
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(deadline_seconds):
            async for chunk in request.content.iter_chunked(_READ_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLarge(f"request body exceeds the limit of {max_bytes} bytes")
                parts.append(chunk)
    except TimeoutError as error:
        raise RequestRejected(
            f"request body not received within {deadline_seconds:g} seconds"
        ) from error
    return b"".join(parts)


def require_json_content_type(request: web.Request) -> None:
    """Refuse bodies not declared as JSON (415), so rules never see a guessed parse."""
    if request.content_type not in ("application/json",) and not request.content_type.endswith(
        "+json"
    ):
        shown = request.headers.get("Content-Type", "<missing>")
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {shown!r}")


def parse_json(body: bytes, *, max_depth: int) -> JsonValue:
    """Parse a JSON body, refusing invalid JSON and nesting deeper than `max_depth` (400)."""
    try:
        value: JsonValue = json.loads(body)
    except RecursionError as error:
        raise RequestRejected(f"JSON nesting exceeds the limit of {max_depth}") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestRejected(f"body is not valid JSON: {error}") from error
    if json_depth(value) > max_depth:
        raise RequestRejected(f"JSON nesting exceeds the limit of {max_depth}")
    return value


def json_depth(value: JsonValue) -> int:
    """How deeply containers nest in a parsed JSON value (a scalar is depth 0).

    Iterative, so a pathological document cannot exhaust the Python stack here.
    """
    deepest = 0
    stack: list[tuple[JsonValue, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            depth += 1
            stack.extend((child, depth) for child in node.values())
        elif isinstance(node, list):
            depth += 1
            stack.extend((child, depth) for child in node)
        deepest = max(deepest, depth)
    return deepest
