"""The stateless HTTPS server: POST /mutate, POST /validate, /healthz, /readyz, /metrics.

Every replica serves; none keeps state that matters. A malformed body gets a 400
with a JSON message (and never crashes the process); an unreadable API gets a 500
so the apiserver applies the configured failurePolicy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from execguard.operator.webhook.admission import Admission, MalformedReview, parse_review
from execguard.operator.webhook.cluster_view import ClusterUnavailable
from execguard.operator.webhook.metrics import WebhookMetrics
from execguard.operator.webhook.reviews import AdmissionReview, AdmissionReviewResponse

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 4 * 1024 * 1024
"""The apiserver caps objects at about 3 MiB; an AdmissionReview carries one or two."""

ADMISSION: Final = web.AppKey("admission", Admission)
METRICS: Final = web.AppKey("metrics", WebhookMetrics)
READY: Final[web.AppKey[Callable[[], bool]]] = web.AppKey("ready")

Handler = Callable[[AdmissionReview], Awaitable[AdmissionReviewResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _answer(request: web.Request, handler: Handler) -> web.Response:
    if request.content_type not in ("application/json", ""):
        request.app[METRICS].malformed.inc()
        return _error(415, f"content type must be application/json, not {request.content_type}")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        request.app[METRICS].malformed.inc()
        return _error(413, f"AdmissionReview larger than {MAX_BODY_BYTES} bytes")
    try:
        review = parse_review(body)
    except MalformedReview as error:
        request.app[METRICS].malformed.inc()
        return _error(400, f"malformed AdmissionReview: {error}")
    try:
        answer = await handler(review)
    except ClusterUnavailable as error:
        logger.warning("admission failed: %s", error)
        return _error(500, str(error))
    except Exception as error:
        # A bug must not take the process down; the apiserver applies the failurePolicy.
        logger.exception("admission crashed")
        return _error(500, f"internal error: {type(error).__name__}")
    return web.json_response(answer)


async def _mutate(request: web.Request) -> web.Response:
    return await _answer(request, request.app[ADMISSION].mutate)


async def _validate(request: web.Request) -> web.Response:
    return await _answer(request, request.app[ADMISSION].validate)


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    if not request.app[READY]():
        return web.json_response({"status": "not ready"}, status=503)
    return web.json_response({"status": "ready"})


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(
    admission: Admission, metrics: WebhookMetrics, ready: Callable[[], bool] = lambda: True
) -> web.Application:
    """The webhook's aiohttp application (TLS is the site's business, not the app's)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[ADMISSION] = admission
    app[METRICS] = metrics
    app[READY] = ready
    app.router.add_post("/mutate", _mutate)
    app.router.add_post("/validate", _validate)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    return app


class BackgroundTasks:
    """Fire-and-forget tasks (Events) kept referenced until done, awaited at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Awaitable[None]) -> None:
        """Run `work` in the background."""

        async def run() -> None:
            try:
                await work
            except Exception:
                logger.exception("background task failed")

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for pending tasks (bounded: each is one API call with its own timeout)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))
