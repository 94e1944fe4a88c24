"""Posting core/v1 Events from the webhook (about a pod's controller, or the pod)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from execguard.operator.webhook.admission import EventTarget, EventType

logger = logging.getLogger(__name__)

COMPONENT: Final = "execguard-webhook"


class ApiEventSink:
    """An `EventSink` writing core/v1 Events; failures are logged, never raised."""

    def __init__(self, api_client: client.ApiClient, reporter: str) -> None:
        self._core: Any = client.CoreV1Api(api_client)
        self._reporter = reporter

    async def __call__(
        self, target: EventTarget, type_: EventType, reason: str, message: str
    ) -> None:
        """Post one Event."""
        now = datetime.now(UTC)
        involved: dict[str, Any] = {
            "kind": target.kind,
            "name": target.name,
            "namespace": target.namespace,
            "apiVersion": target.api_version,
        }
        if target.uid:
            involved["uid"] = target.uid
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{target.name or 'pod'}.{uuid.uuid4().hex[:12]}",
                "namespace": target.namespace,
            },
            "involvedObject": involved,
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._reporter,
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        try:
            await asyncio.to_thread(self._core.create_namespaced_event, target.namespace, body)
        except (ApiException, HTTPError, OSError) as error:
            logger.warning("posting event %s about %s failed: %s", reason, target.name, error)
