"""Sending a request to the model over the shared, pooled upstream client.

Maps every transport failure to a `SidecarError` the client understands:
connect/first-byte/total timeouts give 504, an unreachable or misbehaving model
gives 502. A POST is never retried here once it may have reached the model; the
only second call is an explicit, configured reask.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from multidict import CIMultiDict

from execguard.sidecar.config import UpstreamConfig
from execguard.sidecar.errors import UpstreamError, UpstreamTimeout
from execguard.sidecar.observability.metrics import Metrics


def create_upstream_session(max_connections: int) -> aiohttp.ClientSession:
    """The one pooled client session for all upstream calls (keep-alive reused)."""
    connector = aiohttp.TCPConnector(
        limit=max_connections,
        limit_per_host=max_connections,
        keepalive_timeout=30,
        enable_cleanup_closed=False,
    )
    # auto_decompress off: bodies pass through byte for byte unless we parse them.
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        trust_env=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    )


class UpstreamClient:
    """Where and how to reach the model; the session is shared across config reloads."""

    def __init__(
        self, session: aiohttp.ClientSession, config: UpstreamConfig, metrics: Metrics
    ) -> None:
        self._session = session
        self._config = config
        self._metrics = metrics
        self._base = f"http://{config.host}:{config.port}"
        timeouts = config.timeouts
        self._timeout = aiohttp.ClientTimeout(
            total=timeouts.total_seconds,
            sock_connect=timeouts.connect_seconds,
            sock_read=timeouts.stream_idle_seconds,
        )

    @property
    def stream_idle_seconds(self) -> float:
        """Longest wait between two body chunks."""
        return self._config.timeouts.stream_idle_seconds

    @asynccontextmanager
    async def send(
        self,
        method: str,
        path_qs: str,
        headers: CIMultiDict[str],
        body: bytes | None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send and yield the response once its head arrived; released on exit.

        Leaving the block early (error, client gone, cancellation) closes the
        upstream connection, which cancels the model's work instead of letting it
        run on for nobody.
        """
        timeouts = self._config.timeouts
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeouts.first_byte_seconds):
                response = await self._session.request(
                    method,
                    self._base + path_qs,
                    headers=headers,
                    data=body,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
        except TimeoutError as error:
            self._metrics.upstream_errors.labels("timeout").inc()
            raise UpstreamTimeout(
                f"the model did not answer within {timeouts.first_byte_seconds:g} seconds"
            ) from error
        except aiohttp.ServerTimeoutError as error:
            self._metrics.upstream_errors.labels("timeout").inc()
            raise UpstreamTimeout(f"timed out talking to the model: {error}") from error
        except aiohttp.ClientConnectorError as error:
            self._metrics.upstream_errors.labels("connect").inc()
            raise UpstreamError(
                f"the model at {self._config.host}:{self._config.port} is not reachable"
            ) from error
        except aiohttp.ClientError as error:
            self._metrics.upstream_errors.labels("protocol").inc()
            raise UpstreamError(f"the model connection failed: {type(error).__name__}") from error
        self._metrics.upstream_latency.observe(time.perf_counter() - started)
        complete = False
        try:
            yield response
            complete = True
        finally:
            if complete and response.content.at_eof():
                response.release()
            else:
                response.close()


async def read_limited(response: aiohttp.ClientResponse, *, max_bytes: int) -> bytes:
    """The whole upstream body, refusing one larger than `max_bytes` (502)."""
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise UpstreamError(f"the model's response exceeds {max_bytes} bytes")
            parts.append(chunk)
    except (TimeoutError, aiohttp.ServerTimeoutError) as error:
        raise UpstreamTimeout("the model stopped sending its response") from error
    except aiohttp.ClientError as error:
        raise UpstreamError(f"the model's response broke off: {type(error).__name__}") from error
    return b"".join(parts)
