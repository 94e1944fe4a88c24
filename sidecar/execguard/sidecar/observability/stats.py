"""Per-window counters and mergeable histograms of drift features, served at GET /v1/stats.

Windows are aligned to wall-clock multiples of the window length and histograms
use fixed bucket bounds, so the operator can add up the same window from every
pod of a workload bucket by bucket.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

STATS_VERSION: Final = "v1"

Feature = Literal["response_length", "output_tokens", "latency_ms"]

# Fixed, shared bounds: a histogram from any pod merges with any other.
FEATURE_BOUNDS: Final[dict[Feature, tuple[float, ...]]] = {
    "response_length": tuple(float(2**i) for i in range(3, 18)),  # 8 .. 131072 chars
    "output_tokens": tuple(float(2**i) for i in range(0, 15)),  # 1 .. 16384 tokens
    "latency_ms": (
        5.0,
        10.0,
        25.0,
        50.0,
        100.0,
        250.0,
        500.0,
        1000.0,
        2500.0,
        5000.0,
        10000.0,
        30000.0,
        60000.0,
    ),
}

_REFUSAL = re.compile(
    r"^\s*(i'?m sorry|i am sorry|sorry, but|i can(?:'|no)t (?:help|assist)|i cannot|"
    r"i won'?t be able|as an ai)",
    re.IGNORECASE,
)


def looks_like_refusal(text: str) -> bool:
    """Whether an answer opens the way model refusals do."""
    return bool(_REFUSAL.match(text))


class HistogramSnapshot(BaseModel):
    """Bucket counts: `counts[i]` holds values <= `bounds[i]`; the last count is overflow."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bounds: list[float]
    counts: list[int]
    count: int
    sum: float


class WindowSnapshot(BaseModel):
    """The counters and histograms of one window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: float = Field(description="Unix time the window opened (a multiple of its length).")
    end: float
    closed: bool
    requests: int
    errors: int = Field(description="Answers with status >= 500 (sidecar or model).")
    blocked: int = Field(description="Requests or responses refused by policy.")
    violations: int = Field(description="Decisions with a deny, in any enforcement mode.")
    schema_failures: int
    refusals: int
    validated_responses: int = Field(description="Responses the drift features were taken from.")
    finish_reasons: dict[str, int]
    histograms: dict[str, HistogramSnapshot]


class StatsReport(BaseModel):
    """The body of GET /v1/stats."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal["v1"] = STATS_VERSION
    namespace: str
    pod: str
    generation: int
    window_seconds: float
    windows: list[WindowSnapshot]


@dataclass
class _Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        index = len(self.bounds)
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                index = i
                break
        self.counts[index] += 1
        self.count += 1
        self.total += value

    def snapshot(self) -> HistogramSnapshot:
        return HistogramSnapshot(
            bounds=list(self.bounds), counts=list(self.counts), count=self.count, sum=self.total
        )


@dataclass
class _Window:
    start: float
    requests: int = 0
    errors: int = 0
    blocked: int = 0
    violations: int = 0
    schema_failures: int = 0
    refusals: int = 0
    validated: int = 0
    finish_reasons: Counter[str] = field(default_factory=Counter)
    histograms: dict[Feature, _Histogram] = field(
        default_factory=lambda: {name: _Histogram(b) for name, b in FEATURE_BOUNDS.items()}
    )


@dataclass(frozen=True)
class ResponseFeatures:
    """The drift features of one validated response."""

    length: int
    output_tokens: int | None
    latency_ms: float
    refusal: bool
    finish_reason: str | None
    schema_failed: bool


class StatsRecorder:
    """Keeps the current window and the last `windows_kept` closed ones."""

    def __init__(
        self,
        *,
        window_seconds: float,
        windows_kept: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_seconds = window_seconds
        self._kept = windows_kept
        self._clock = clock
        self._windows: list[_Window] = []

    def _current(self) -> _Window:
        now = self._clock()
        start = math.floor(now / self.window_seconds) * self.window_seconds
        if not self._windows or self._windows[-1].start != start:
            self._windows.append(_Window(start=start))
            del self._windows[: -(self._kept + 1)]
        return self._windows[-1]

    def request(self, *, status: int, blocked: bool) -> None:
        """Count one answered request."""
        window = self._current()
        window.requests += 1
        if status >= 500:
            window.errors += 1
        if blocked:
            window.blocked += 1

    def violation(self) -> None:
        """Count a decision that denied (whether or not it was enforced)."""
        self._current().violations += 1

    def response(self, features: ResponseFeatures) -> None:
        """Add one response's drift features."""
        window = self._current()
        window.validated += 1
        window.histograms["response_length"].observe(features.length)
        if features.output_tokens is not None:
            window.histograms["output_tokens"].observe(features.output_tokens)
        window.histograms["latency_ms"].observe(features.latency_ms)
        if features.refusal:
            window.refusals += 1
        if features.finish_reason is not None:
            window.finish_reasons[features.finish_reason[:32]] += 1
        if features.schema_failed:
            window.schema_failures += 1

    def report(self, *, namespace: str, pod: str, generation: int) -> StatsReport:
        """All retained windows, oldest first; the last one is still open."""
        self._current()
        now = self._clock()
        windows = [
            WindowSnapshot(
                start=w.start,
                end=w.start + self.window_seconds,
                closed=w.start + self.window_seconds <= now,
                requests=w.requests,
                errors=w.errors,
                blocked=w.blocked,
                violations=w.violations,
                schema_failures=w.schema_failures,
                refusals=w.refusals,
                validated_responses=w.validated,
                finish_reasons=dict(w.finish_reasons),
                histograms={name: h.snapshot() for name, h in w.histograms.items()},
            )
            for w in self._windows
        ]
        return StatsReport(
            namespace=namespace,
            pod=pod,
            generation=generation,
            window_seconds=self.window_seconds,
            windows=windows,
        )


def merge_histograms(parts: list[HistogramSnapshot]) -> HistogramSnapshot:
    """Add histograms with identical bounds (e.g. one per pod) into one."""
    if not parts:
        raise ValueError("nothing to merge")
    bounds = parts[0].bounds
    if any(part.bounds != bounds for part in parts):
        raise ValueError("histograms with different bounds cannot be merged")
    counts = [sum(column) for column in zip(*(part.counts for part in parts), strict=True)]
    return HistogramSnapshot(
        bounds=bounds,
        counts=counts,
        count=sum(part.count for part in parts),
        sum=sum(part.sum for part in parts),
    )
