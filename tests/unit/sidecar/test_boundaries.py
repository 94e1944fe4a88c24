"""Boundaries checked before the model: JSON depth, rate limits, sessions, model access,
concurrency."""

from __future__ import annotations

import asyncio

import pytest

from execguard.sidecar.boundaries.body import json_depth, parse_json
from execguard.sidecar.boundaries.concurrency import ConcurrencyLimiter
from execguard.sidecar.boundaries.model_access import enforce_model_access
from execguard.sidecar.boundaries.rate_limit import RateLimiter
from execguard.sidecar.boundaries.sessions import SessionTracker
from execguard.sidecar.config import (
    BoundariesConfig,
    RateLimitConfig,
    SessionLimitConfig,
    TokenCapConfig,
    TokenCapMode,
)
from execguard.sidecar.errors import (
    Overloaded,
    PolicyDenied,
    RateLimited,
    RequestRejected,
    SessionBudgetExceeded,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_json_nested_past_the_limit_is_refused() -> None:
    assert json_depth({"a": [1, {"b": []}]}) == 4
    parse_json(b"[[[]]]", max_depth=3)
    with pytest.raises(RequestRejected, match="nesting"):
        parse_json(b"[[[[]]]]", max_depth=3)


def test_json_nested_past_the_interpreter_stack_is_a_400_not_a_crash() -> None:
    with pytest.raises(RequestRejected, match="nesting"):
        parse_json(b"[" * 100_000 + b"]" * 100_000, max_depth=64)


def test_rate_limit_refills_over_time_and_names_the_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimitConfig(requests_per_second=0.5, burst=1), clock=clock)
    limiter.check("a")
    with pytest.raises(RateLimited) as refused:
        limiter.check("a")
    assert refused.value.headers["Retry-After"] == "2"
    limiter.check("b")  # other keys have their own bucket
    clock.now += 2
    limiter.check("a")


def test_sessions_count_steps_and_tokens_and_expire() -> None:
    clock = Clock()
    config = SessionLimitConfig(max_steps=2, max_total_tokens=100, ttl_seconds=60)
    tracker = SessionTracker(config, clock=clock)
    assert tracker.begin_step("s").steps == 1
    tracker.add_tokens("s", 100)
    with pytest.raises(SessionBudgetExceeded, match="tokens"):
        tracker.begin_step("s")
    clock.now += 61
    assert tracker.begin_step("s").tokens == 0  # expired: a fresh session


def test_token_cap_rejects_or_clamps() -> None:
    body = {"model": "m", "max_tokens": 500}
    reject = BoundariesConfig(tokens=TokenCapConfig(max_tokens=100))
    with pytest.raises(PolicyDenied, match="exceeds the cap"):
        enforce_model_access(body, reject)
    clamp = BoundariesConfig(tokens=TokenCapConfig(max_tokens=100, mode=TokenCapMode.CLAMP))
    assert enforce_model_access(body, clamp)["max_tokens"] == 100
    assert body["max_tokens"] == 500  # the caller's body is not mutated
    with pytest.raises(RequestRejected, match="positive integer"):
        enforce_model_access({"max_tokens": "lots"}, clamp)


def test_tools_outside_the_allow_list_are_named() -> None:
    bounds = BoundariesConfig(allowed_tools=["search"])
    body = {
        "tools": [
            {"type": "function", "function": {"name": "search"}},
            {"type": "function", "function": {"name": "shell"}},
        ]
    }
    with pytest.raises(PolicyDenied, match="shell"):
        enforce_model_access(body, bounds)


async def test_concurrency_queue_bound_gives_503() -> None:
    limiter = ConcurrencyLimiter(max_concurrent=1, max_queued=0, queue_timeout=5)
    async with limiter.slot():
        with pytest.raises(Overloaded) as refused:
            async with limiter.slot():
                pass
    assert refused.value.headers["Retry-After"] == "1"


async def test_concurrency_waiters_time_out_with_503() -> None:
    limiter = ConcurrencyLimiter(max_concurrent=1, max_queued=1, queue_timeout=0.01)
    release = asyncio.Event()

    async def hold() -> None:
        async with limiter.slot():
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    with pytest.raises(Overloaded, match="no request slot"):
        async with limiter.slot():
            pass
    release.set()
    await holder
    assert limiter.active == 0
