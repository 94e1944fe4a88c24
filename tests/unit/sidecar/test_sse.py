"""Splitting an SSE byte stream into events, whatever the chunking."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, strategies as st

from execguard.sidecar.proxy.sse import SseParser, SseProtocolError

STREAM = b'data: {"a": 1}\r\n\r\n: keep-alive\n\ndata: line one\ndata: line two\n\ndata: [DONE]\n\n'


def parse(chunks: list[bytes]) -> list[str | None]:
    parser = SseParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)] + parser.finish()
    return [event.data for event in events]


def test_events_data_lines_and_comments() -> None:
    assert parse([STREAM]) == ['{"a": 1}', None, "line one\nline two", "[DONE]"]


@given(st.lists(st.integers(0, len(STREAM)), max_size=10))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    positions = sorted({0, len(STREAM), *cuts})
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(positions)]
    assert parse(chunks) == parse([STREAM])


def test_an_event_without_an_end_is_refused_past_the_bound() -> None:
    parser = SseParser()
    with pytest.raises(SseProtocolError):
        parser.feed(b"data: " + b"x" * 2_000_000)
