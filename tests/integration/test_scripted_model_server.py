"""The scripted model server is reproducible by seed and drifts when told to.

It runs as a real process on a free loopback port, as tests and the demo use it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from execguard.devkit.catalog import MODEL_SERVER_SCRIPT
from execguard.devkit.controlplane.cluster import free_port
from execguard.devkit.waiting import wait_for

pytestmark = pytest.mark.integration


@contextmanager
def model_server(*flags: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(MODEL_SERVER_SCRIPT),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *flags,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1):
                return True
        except OSError:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            return False

    try:
        wait_for("the model server", up, timeout=20)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def post(base: str, path: str, body: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def chat(base: str, stream: bool = False) -> tuple[int, bytes]:
    return post(
        base,
        "/v1/chat/completions",
        {
            "model": "scripted-small",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": stream,
        },
    )


def contents(base: str, n: int) -> list[str]:
    return [json.loads(chat(base)[1])["choices"][0]["message"]["content"] for _ in range(n)]


def test_the_same_seed_gives_the_same_answers_and_another_seed_does_not():
    with model_server("--seed", "11", "--pii-rate", "0.3") as base:
        first = contents(base, 5)
    with model_server("--seed", "11", "--pii-rate", "0.3") as base:
        again = contents(base, 5)
    with model_server("--seed", "12", "--pii-rate", "0.3") as base:
        other = contents(base, 5)
    assert first == again
    assert first != other


def test_drift_after_n_requests_switches_to_the_drift_profile():
    with model_server(
        "--refusal-rate", "0", "--drift-refusal-rate", "1", "--drift-after", "3"
    ) as base:
        answers = contents(base, 5)
    assert all("sorry" not in a for a in answers[:3])
    assert all("sorry" in a for a in answers[3:])


def test_streams_are_sse_chunks_that_join_to_the_full_answer_and_end_with_done():
    with model_server("--seed", "5", "--pii-rate", "1") as base:
        status, raw = chat(base, stream=True)
    assert status == 200
    events = [
        line[len("data: ") :] for line in raw.decode().split("\n\n") if line.startswith("data: ")
    ]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1]]
    assert len(chunks) > 2
    text = "".join(chunks)
    assert "@example." in text or "4111" in text, "PII spans chunk boundaries in the stream"


@pytest.mark.parametrize(
    ("flags", "expected_status"),
    [(("--error-rate", "1"), 500), ((), 200)],
)
def test_error_rate_gives_server_errors(flags, expected_status):
    with model_server(*flags) as base:
        status, _ = chat(base)
    assert status == expected_status


def test_malformed_rate_breaks_the_plain_json_endpoint_and_bad_input_gets_400():
    with model_server("--malformed-rate", "1") as base:
        _, body = post(base, "/v1/json", {"q": 1})
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
        request = urllib.request.Request(base + "/v1/json", data=b"{not json", method="POST")
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=5)
        assert error.value.code == 400
        error.value.close()
