"""Leader election with a `coordination.k8s.io/v1` Lease: several replicas, one acts.

Each replica tries to hold the Lease. The holder renews it every
`renew_interval_seconds`; a standby takes it over once it has seen no renewal
for `lease_duration_seconds` (measured on its own clock from when it last saw
the record change, so clock skew between nodes does not matter). Writes use the
Lease's resourceVersion, so two standbys racing for an expired lease cannot both
win. A leader that fails to renew within the lease duration stops acting.

Nothing else is kept only in memory: everything the operator needs to resume
is in the objects' status, annotations and the rendered ConfigMaps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

logger = logging.getLogger(__name__)


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseConfig:
    """Which Lease, who we are, and the timings."""

    name: str
    namespace: str
    identity: str
    duration_seconds: int
    renew_interval_seconds: float
    retry_interval_seconds: float


class LeaderElector:
    """Acquires, renews and releases the Lease for one replica."""

    def __init__(self, api_client: client.ApiClient, config: LeaseConfig) -> None:
        self._api: Any = client.CoordinationV1Api(api_client)
        self._config = config
        self._observed_record: tuple[object, ...] | None = None
        self._observed_at = 0.0

    async def _read(self) -> Any | None:
        try:
            return await asyncio.to_thread(
                self._api.read_namespaced_lease, self._config.name, self._config.namespace
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _spec(self, transitions: int, acquire_time: str | None) -> dict[str, Any]:
        now = _micro_time()
        return {
            "holderIdentity": self._config.identity,
            "leaseDurationSeconds": self._config.duration_seconds,
            "acquireTime": acquire_time or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True if this replica holds the Lease afterwards."""
        config = self._config
        lease = await self._read()
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": config.name, "namespace": config.namespace},
                "spec": self._spec(0, None),
            }
            try:
                await asyncio.to_thread(self._api.create_namespaced_lease, config.namespace, body)
            except ApiException as error:
                if error.status == 409:
                    return False
                raise
            return True
        spec = lease.spec
        record = (spec.holder_identity, spec.renew_time, spec.lease_transitions)
        if record != self._observed_record:
            self._observed_record = record
            self._observed_at = time.monotonic()
        holder = spec.holder_identity or ""
        duration = spec.lease_duration_seconds or config.duration_seconds
        expired = time.monotonic() - self._observed_at > duration
        if holder and holder != config.identity and not expired:
            return False
        transitions = spec.lease_transitions or 0
        acquire_time = None
        if holder == config.identity and spec.acquire_time is not None:
            acquire_time = spec.acquire_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        else:
            transitions += 1
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": config.name,
                "namespace": config.namespace,
                "resourceVersion": lease.metadata.resource_version,
            },
            "spec": self._spec(transitions, acquire_time),
        }
        try:
            await asyncio.to_thread(
                self._api.replace_namespaced_lease, config.name, config.namespace, body
            )
        except ApiException as error:
            if error.status == 409:
                return False  # someone else wrote first
            raise
        return True

    async def acquire(self) -> None:
        """Wait until this replica holds the Lease."""
        announced = False
        while True:
            try:
                if await self.try_acquire_or_renew():
                    logger.info("acquired lease %s as %s", self._config.name, self._config.identity)
                    return
            except ApiException as error:
                logger.warning("lease %s: %s %s", self._config.name, error.status, error.reason)
            if not announced:
                logger.info("standing by: lease %s is held by another replica", self._config.name)
                announced = True
            await asyncio.sleep(self._config.retry_interval_seconds)

    async def hold(self) -> None:
        """Renew until renewal fails for longer than the lease duration, then return."""
        last_renewed = time.monotonic()
        while True:
            await asyncio.sleep(self._config.renew_interval_seconds)
            try:
                if await self.try_acquire_or_renew():
                    last_renewed = time.monotonic()
                    continue
                logger.error("lost lease %s to another replica", self._config.name)
                return
            except ApiException as error:
                logger.warning("renewing lease failed: %s %s", error.status, error.reason)
            if time.monotonic() - last_renewed > self._config.duration_seconds:
                logger.error("could not renew lease %s in time", self._config.name)
                return

    async def release(self) -> None:
        """Give the Lease up at shutdown so a standby takes over at once."""
        lease = await self._read()
        if lease is None or lease.spec.holder_identity != self._config.identity:
            return
        lease.spec.holder_identity = None
        lease.spec.lease_duration_seconds = 1
        try:
            await asyncio.to_thread(
                self._api.replace_namespaced_lease,
                self._config.name,
                self._config.namespace,
                lease,
            )
        except ApiException as error:
            logger.warning("releasing lease failed: %s %s", error.status, error.reason)
