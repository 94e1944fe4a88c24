"""Token-bucket rate limits per key (client IP or a header value)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from execguard.sidecar.config import RateLimitConfig
from execguard.sidecar.errors import RateLimited, retry_after


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """One token bucket per key, least recently used keys evicted past `max_keys`."""

    def __init__(
        self, config: RateLimitConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = config.requests_per_second
        self._burst = float(config.burst)
        self._max_keys = config.max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def check(self, key: str) -> None:
        """Take one token for `key`, or raise `RateLimited` with the wait until the next."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=self._burst, updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / self._rate
            raise RateLimited(
                f"rate limit of {self._rate:g} requests/second exceeded",
                headers=retry_after(wait),
            )
        bucket.tokens -= 1.0
