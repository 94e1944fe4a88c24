"""Windowed stats: aligned windows, retention, and histograms that merge across pods."""

from __future__ import annotations

import pytest

from execguard.sidecar.observability.stats import (
    ResponseFeatures,
    StatsRecorder,
    looks_like_refusal,
    merge_histograms,
)


class Clock:
    def __init__(self) -> None:
        self.now = 120.0

    def __call__(self) -> float:
        return self.now


def features(length: int, *, refusal: bool = False) -> ResponseFeatures:
    return ResponseFeatures(
        length=length,
        output_tokens=length // 4,
        latency_ms=12.0,
        refusal=refusal,
        finish_reason="stop",
        schema_failed=False,
    )


def test_windows_are_aligned_and_only_the_kept_ones_remain() -> None:
    clock = Clock()
    stats = StatsRecorder(window_seconds=60, windows_kept=2, clock=clock)
    for _ in range(4):
        stats.request(status=200, blocked=False)
        clock.now += 60
    report = stats.report(namespace="ns", pod="p", generation=1)
    assert [w.start for w in report.windows] == [240.0, 300.0, 360.0]
    assert [w.closed for w in report.windows] == [True, True, False]


def test_histograms_from_two_pods_add_up() -> None:
    a = StatsRecorder(window_seconds=60, windows_kept=1, clock=Clock())
    b = StatsRecorder(window_seconds=60, windows_kept=1, clock=Clock())
    a.response(features(10))
    b.response(features(5000, refusal=True))
    wa = a.report(namespace="", pod="a", generation=1).windows[-1]
    wb = b.report(namespace="", pod="b", generation=1).windows[-1]
    merged = merge_histograms([wa.histograms["response_length"], wb.histograms["response_length"]])
    assert merged.count == 2
    assert merged.sum == 5010
    assert sum(merged.counts) == 2
    assert wb.refusals == 1


def test_histograms_with_different_bounds_do_not_merge() -> None:
    window = (
        StatsRecorder(window_seconds=60, windows_kept=1)
        .report(namespace="", pod="", generation=0)
        .windows[-1]
    )
    length = window.histograms["response_length"]
    tokens = window.histograms["output_tokens"]
    with pytest.raises(ValueError, match="different bounds"):
        merge_histograms([length, tokens])


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("I'm sorry, but I can't help with that request.", True),
        ("I cannot assist with that.", True),
        ("Sorry to hear that; here is the answer.", False),
        ("The answer is 42.", False),
    ],
)
def test_refusals_are_recognised(text: str, refusal: bool) -> None:
    assert looks_like_refusal(text) is refusal
