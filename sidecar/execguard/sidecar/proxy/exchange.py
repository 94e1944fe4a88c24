"""What the pipeline knows about one request as it moves through the stages."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

from aiohttp import web
from pydantic import JsonValue

from execguard.sidecar.config import UpstreamProtocol
from execguard.sidecar.policy.input import RequestView, SessionView, WorkloadView
from execguard.sidecar.runtime import Runtime


class RouteKind(StrEnum):
    """How a request is handled, from the protocol, method and path."""

    CHAT = "chat"
    COMPLETIONS = "completions"
    JSON = "json"
    PASSTHROUGH = "passthrough"

    @property
    def openai(self) -> bool:
        """Whether bodies have the OpenAI completion shape."""
        return self in (RouteKind.CHAT, RouteKind.COMPLETIONS)


def classify(protocol: UpstreamProtocol, method: str, path: str) -> RouteKind:
    """The route kind for a request."""
    has_body = method in ("POST", "PUT", "PATCH")
    if protocol is UpstreamProtocol.PASSTHROUGH or not has_body:
        return RouteKind.PASSTHROUGH
    if protocol is UpstreamProtocol.OPENAI:
        if path.rstrip("/") == "/v1/chat/completions":
            return RouteKind.CHAT
        if path.rstrip("/") == "/v1/completions":
            return RouteKind.COMPLETIONS
    return RouteKind.JSON


@dataclass
class Exchange:
    """One request's state: the parsed body, session, decisions and headers to add."""

    request: web.Request
    runtime: Runtime
    kind: RouteKind
    started: float = field(default_factory=time.perf_counter)
    body: JsonValue = None
    session_id: str | None = None
    session: SessionView = field(default_factory=SessionView)
    response_headers: dict[str, str] = field(default_factory=dict)
    blocked: bool = False

    def request_view(self) -> RequestView:
        """The request as policies see it: allow-listed headers only."""
        allowed = self.runtime.config.validation.policy_headers
        headers = {
            name.lower(): self.request.headers[name]
            for name in allowed
            if name in self.request.headers
        }
        return RequestView(
            method=self.request.method, path=self.request.path, headers=headers, body=self.body
        )

    def workload_view(self) -> WorkloadView:
        """Where this sidecar runs."""
        workload = self.runtime.config.workload
        return WorkloadView(
            namespace=workload.namespace, pod=workload.pod, labels=dict(workload.labels)
        )

    @property
    def streaming_requested(self) -> bool:
        """Whether the client asked for an SSE stream."""
        return isinstance(self.body, dict) and self.body.get("stream") is True

    def annotate(self, name: str, value: str) -> None:
        """Add an execguard header to the eventual response (CR/LF stripped)."""
        clean = value.replace("\r", " ").replace("\n", " ")[:1024]
        self.response_headers[f"X-Execguard-{name}"] = clean
