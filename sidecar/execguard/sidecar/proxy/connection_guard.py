"""A deadline for the request head, which aiohttp does not have on its own.

Without it a client can open connections and send its headers one byte at a time
(slowloris), holding a connection each for as long as it likes. The keep-alive
timeout only covers connections that send nothing; this covers ones that send
too slowly. Body reads have their own deadline in the handler.

This reaches into aiohttp's `RequestHandler` (its `_waiter` and `_request_count`);
the process-level tests pin the behaviour, so an aiohttp upgrade that changes
those internals fails loudly rather than silently dropping the guard.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

log = logging.getLogger("execguard.sidecar.connections")


class _HeadDeadlineHandler(RequestHandler):
    """Closes a connection whose next request head does not complete in time."""

    head_timeout: float = 10.0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._arm_head_deadline()

    def _waiting_for_head(self) -> bool:
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _arm_head_deadline(self) -> None:
        if not self._waiting_for_head() or getattr(self, "_head_timer", None) is not None:
            return
        loop = asyncio.get_running_loop()
        count = self._request_count
        self._head_timer: asyncio.TimerHandle | None = loop.call_later(
            self.head_timeout, self._head_deadline_passed, count
        )

    def _head_deadline_passed(self, count_at_start: int) -> None:
        self._head_timer = None
        if not self._waiting_for_head():
            return
        if self._request_count == count_at_start:
            self.force_close()  # still the same incomplete head: too slow
        else:
            self._arm_head_deadline()  # a later head started meanwhile: give it its own time

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A JSON error (never a traceback) for requests the HTTP parser or a handler broke on.

        Malformed framing (smuggling shapes, bare LF, CR/LF/NUL in values) is
        refused here by the compiled parser before any handler runs.
        """
        if request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        if isinstance(exc, LineTooLong):
            status, code = 431, "header_too_large"
        elif status >= 500:
            code = "internal_error"
            log.error("unhandled error in the proxy", exc_info=exc)
        else:
            code = "bad_http_request"
        detail = (
            exc.message
            if isinstance(exc, BadHttpMessage) and isinstance(exc.message, str)
            else "malformed HTTP request"
        )
        if status >= 500:
            detail = "the sidecar failed to handle the request"
        else:
            log.info("refused malformed request: %s", detail)
        body = json.dumps({"error": {"type": code, "message": detail}})
        response = web.Response(status=status, text=body, content_type="application/json")
        response.force_close()
        return response

    def connection_lost(self, exc: BaseException | None) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)


class _GuardedServer(web.Server):
    """A `web.Server` whose connections get the head deadline."""

    head_timeout: float

    def __call__(self) -> RequestHandler:
        handler = _HeadDeadlineHandler(self, loop=self._loop, **self._kwargs)
        handler.head_timeout = self.head_timeout
        return handler


class GuardedAppRunner(web.AppRunner):
    """An `AppRunner` whose server enforces a request-head deadline."""

    def __init__(self, app: web.Application, *, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._head_timeout = head_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same object, one overridden factory method: keeps everything AppRunner set up.
        server.__class__ = _GuardedServer
        assert isinstance(server, _GuardedServer)
        server.head_timeout = self._head_timeout
        return server
