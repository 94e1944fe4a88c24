"""Malformed and hostile HTTP at the socket level: smuggling shapes, huge heads,
oversized bodies, slow clients, and the refusal to run on the pure-Python parser."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from sidecar_processes import ModelServer, Sidecar, base_config, free_port

HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes and read until the server closes or 5 s pass."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received and received.endswith(b"}"):
                    break
        except TimeoutError:
            pass
    return received


def status_and_error(raw: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["error"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        HEAD + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        HEAD + b"Transfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        HEAD + b"Transfer-Encoding : chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        HEAD.replace(b"\r\n", b"\n") + b"Content-Length: 2\n\n{}",
        HEAD + b"X-A: a\rb\r\nContent-Length: 2\r\n\r\n{}",
        HEAD + b"X-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
        HEAD + b"Content-Length: +2\r\n\r\n{}",
    ],
    ids=[
        "content-length-with-transfer-encoding",
        "duplicate-content-length",
        "obfuscated-transfer-encoding",
        "space-before-colon",
        "transfer-encoding-list",
        "bare-lf",
        "cr-in-header-value",
        "nul-in-header-value",
        "signed-content-length",
    ],
)
def test_smuggling_shapes_are_refused_with_a_json_400(
    model_server: ModelServer, spawn: Callable[..., Sidecar], request_bytes: bytes
) -> None:
    sidecar = spawn(base_config(model_server.port))
    status, error = status_and_error(exchange(sidecar.port, request_bytes))
    assert status == 400
    assert error["type"] in ("bad_http_request", "invalid_request")


def test_huge_header_gets_431(model_server: ModelServer, spawn: Callable[..., Sidecar]) -> None:
    sidecar = spawn(base_config(model_server.port))
    raw = exchange(sidecar.port, b"GET /v1/models HTTP/1.1\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    status, error = status_and_error(raw)
    assert status == 431
    assert error["type"] == "header_too_large"


def test_declared_oversized_body_gets_413_before_it_is_sent(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(base_config(model_server.port, boundaries={"maxRequestBytes": 1000}))
    # Only the head is sent: the answer must come without waiting for 10 MB.
    raw = exchange(sidecar.port, HEAD + b"Content-Length: 10000000\r\n\r\n{")
    status, error = status_and_error(raw)
    assert status == 413
    assert error["type"] == "request_too_large"


def test_chunked_body_over_the_limit_gets_413_while_streaming(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(base_config(model_server.port, boundaries={"maxRequestBytes": 1000}))
    chunk = b"400\r\n" + b" " * 1024 + b"\r\n"
    raw = exchange(sidecar.port, HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 2)
    assert status_and_error(raw)[0] == 413


def test_slowloris_client_is_disconnected(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(
        base_config(
            model_server.port,
            listen={"host": "127.0.0.1", "port": free_port(), "headerTimeoutSeconds": 0.5},
        )
    )
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as sock:
        closed = False
        for byte in HEAD:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.05)
        if not closed:
            # Well inside the 15 s keep-alive timeout, so only the head deadline can close it.
            sock.settimeout(5)
            try:
                closed = sock.recv(1) == b""
            except ConnectionResetError:
                closed = True
    assert closed, "a client trickling its headers was never cut off"


def test_slow_body_gets_a_clear_error(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(
        base_config(
            model_server.port,
            listen={"host": "127.0.0.1", "port": free_port(), "bodyTimeoutSeconds": 0.3},
        )
    )
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as sock:
        sock.sendall(HEAD + b"Content-Length: 100\r\n\r\n{")
        raw = sock.recv(65536)
    status, error = status_and_error(raw)
    assert status == 400
    assert "not received within" in error["message"]


def test_sidecar_refuses_to_start_on_the_pure_python_parser(
    model_server: ModelServer, tmp_path
) -> None:
    config = base_config(model_server.port)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-m", "execguard.sidecar", "--config", str(path)],
        env={**os.environ, "AIOHTTP_NO_EXTENSIONS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "pure-Python HTTP parser" in result.stderr


def test_invalid_config_at_start_is_refused_with_the_location(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"boundaries": {"maxRequestBytes": -1}}')
    result = subprocess.run(
        [sys.executable, "-m", "execguard.sidecar", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "boundaries.maxRequestBytes" in result.stderr
