"""Errors the sidecar answers clients with, each carrying its HTTP status.

Raised anywhere in the pipeline and translated to a JSON response only at the
edge (the error middleware)::

    SidecarError                    status, code, message, reasons, headers
    ├── RequestRejected             400  the request is malformed or breaks a boundary
    │   ├── BodyTooLarge            413
    │   ├── UnsupportedMediaType    415
    │   ├── RateLimited             429 + Retry-After
    │   ├── SessionBudgetExceeded   429
    │   └── PolicyDenied            403  a rule or an allow-list said no
    ├── Overloaded                  503 + Retry-After (concurrency queue full)
    ├── PolicyEngineDown            503  engine unavailable and failurePolicy=closed
    └── UpstreamError               502  the model failed
        ├── UpstreamTimeout         504
        └── ResponseBlocked         502  the response failed validation
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

from aiohttp import web


class SidecarError(Exception):
    """An error the client sees as a JSON body `{"error": {...}}` with `status`."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        reasons: Sequence[str] = (),
        decision_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reasons = tuple(reasons)
        self.decision_id = decision_id
        self.headers = dict(headers or {})

    def to_response(self) -> web.Response:
        """The JSON response this error becomes at the edge."""
        error: dict[str, object] = {"type": self.code, "message": self.message}
        if self.reasons:
            error["reasons"] = list(self.reasons)
        if self.decision_id is not None:
            error["decision_id"] = self.decision_id
        headers = {"Cache-Control": "no-store", **self.headers}
        if self.decision_id is not None:
            headers["X-Execguard-Decision-Id"] = self.decision_id
        return web.Response(
            status=self.status,
            body=json.dumps({"error": error}).encode(),
            content_type="application/json",
            headers=headers,
        )


def retry_after(seconds: float) -> dict[str, str]:
    """A Retry-After header for a wait in seconds (whole seconds, at least 1)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class RequestRejected(SidecarError):
    """The request is malformed or breaks a boundary."""

    status = 400
    code = "invalid_request"


class BodyTooLarge(RequestRejected):
    """The request body exceeds `boundaries.maxRequestBytes`."""

    status = 413
    code = "request_too_large"


class UnsupportedMediaType(RequestRejected):
    """The body is not declared as JSON where JSON is required."""

    status = 415
    code = "unsupported_media_type"


class RateLimited(RequestRejected):
    """The caller's rate-limit bucket is empty."""

    status = 429
    code = "rate_limited"


class SessionBudgetExceeded(RequestRejected):
    """The session has used up its steps or tokens."""

    status = 429
    code = "session_budget_exceeded"


class PolicyDenied(RequestRejected):
    """A request rule, an allow-list or a cap refused the request."""

    status = 403
    code = "policy_denied"


class Overloaded(SidecarError):
    """No concurrency slot came free in time, or the wait queue is full."""

    status = 503
    code = "overloaded"


class PolicyEngineDown(SidecarError):
    """The policy engine could not answer and failurePolicy is closed."""

    status = 503
    code = "policy_unavailable"


class UpstreamError(SidecarError):
    """The model could not be reached or answered badly."""

    status = 502
    code = "upstream_error"


class UpstreamTimeout(UpstreamError):
    """The model did not connect, answer or finish in time."""

    status = 504
    code = "upstream_timeout"


class ResponseBlocked(UpstreamError):
    """The model's response failed validation and onFailure is block."""

    status = 502
    code = "response_blocked"
