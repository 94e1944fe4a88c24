"""A bound on requests in flight to the model, with a bounded, timed wait queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from execguard.sidecar.errors import Overloaded, retry_after


class ConcurrencyLimiter:
    """At most `max_concurrent` holders; up to `max_queued` wait up to `queue_timeout`.

    Beyond the queue, or after the wait, the caller gets `Overloaded` (503 with
    Retry-After) instead of piling work onto a model that is already saturated.
    """

    def __init__(self, *, max_concurrent: int, max_queued: int, queue_timeout: float) -> None:
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._max_concurrent = max_concurrent
        self._max_queued = max_queued
        self._queue_timeout = queue_timeout
        self._waiting = 0
        self._active = 0

    @property
    def active(self) -> int:
        """Requests holding a slot now."""
        return self._active

    @property
    def waiting(self) -> int:
        """Requests queued for a slot now."""
        return self._waiting

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block."""
        if self._semaphore.locked():
            if self._waiting >= self._max_queued:
                raise Overloaded(
                    f"{self._max_concurrent} requests in flight and "
                    f"{self._waiting} queued; try again later",
                    headers=retry_after(1),
                )
            self._waiting += 1
            try:
                async with asyncio.timeout(self._queue_timeout):
                    await self._semaphore.acquire()
            except TimeoutError as error:
                raise Overloaded(
                    f"no request slot came free within {self._queue_timeout:g} seconds",
                    headers=retry_after(self._queue_timeout),
                ) from error
            finally:
                self._waiting -= 1
        else:
            await self._semaphore.acquire()
        self._active += 1
        try:
            yield
        finally:
            self._active -= 1
            self._semaphore.release()
