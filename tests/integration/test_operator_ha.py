"""Two operator replicas: exactly one acts, and the other takes over when the leader dies."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Shared helpers; pytest puts this directory on sys.path (rootdir-relative import mode).
from test_operator_reconcile import (  # type: ignore[import-not-found]
    LEASE_NAMESPACE,
    OperatorProcess,
    apply,
    execution_policy,
    get_json,
    install_crds,
    lease_holder,
    model_pod,
    pod_config,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.integration

TAKEOVER_DEADLINE_SECONDS = 30.0


@pytest.fixture
def replicas(control_plane: Any, tmp_path: Path) -> Iterator[tuple[OperatorProcess, ...]]:
    install_crds(control_plane)
    lease = f"ha-{uuid.uuid4().hex[:6]}"
    first = OperatorProcess(control_plane, tmp_path / "a.log", "replica-a", lease)
    wait_for("replica-a to lead", lambda: lease_holder(control_plane, lease) == "replica-a")
    second = OperatorProcess(control_plane, tmp_path / "b.log", "replica-b", lease)
    try:
        yield first, second
    finally:
        for replica in (first, second):
            replica.stop()
        for replica in (first, second):
            print(f"--- {replica.identity}\n{replica.log.read_text()[-3000:]}")
        control_plane.kubectl("delete", "lease", lease, "-n", LEASE_NAMESPACE, "--ignore-not-found")


@pytest.fixture
def namespace(control_plane: Any) -> Iterator[str]:
    name = f"ha-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _leader_of(cluster: Any, replicas: tuple[OperatorProcess, ...]) -> str | None:
    lease = json.loads(cluster.kubectl("get", "lease", "-n", LEASE_NAMESPACE, "-o", "json").stdout)
    holders = {item["spec"].get("holderIdentity") for item in lease["items"]}
    return next((r.identity for r in replicas if r.identity in holders), None)


def test_only_the_leader_acts_and_the_standby_takes_over_when_it_dies(
    control_plane: Any, replicas: tuple[OperatorProcess, ...], namespace: str
) -> None:
    leader, standby = replicas
    apply(control_plane, execution_policy("before", namespace))
    wait_ready(control_plane, "xp/before", namespace)
    assert _leader_of(control_plane, replicas) == leader.identity
    assert "standing by" in wait_for(
        "the standby to report standing by",
        lambda: (text := standby.log.read_text()) and "standing by" in text and text,
    )
    assert "Handler 'execution_policy' succeeded" not in standby.log.read_text()

    leader.kill()  # SIGKILL: no chance to release the lease
    killed_at = time.monotonic()
    apply(control_plane, execution_policy("after", namespace))
    wait_ready_deadline = TAKEOVER_DEADLINE_SECONDS - (time.monotonic() - killed_at)
    wait_for(
        f"the standby to reconcile within {TAKEOVER_DEADLINE_SECONDS}s of the leader's death",
        lambda: (
            (obj := get_json(control_plane, "xp/after", "-n", namespace))
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (obj.get("status") or {}).get("conditions", [])
            )
        ),
        timeout=wait_ready_deadline,
    )
    print(f"standby reconciled {time.monotonic() - killed_at:.1f}s after the leader was killed")
    assert _leader_of(control_plane, replicas) == standby.identity
    # The new leader resumed the old object from its status, not from memory.
    before = get_json(control_plane, "xp/before", "-n", namespace)
    assert before is not None
    assert before["status"]["lastGoodGeneration"] == 1


def test_a_stopped_leader_hands_over_at_once(
    control_plane: Any, replicas: tuple[OperatorProcess, ...], namespace: str
) -> None:
    leader, standby = replicas
    leader.stop()  # SIGTERM: releases the lease on the way out
    wait_for(
        "the standby to acquire the released lease",
        lambda: _leader_of(control_plane, replicas) == standby.identity,
        timeout=15,
    )
    apply(control_plane, execution_policy("handed-over", namespace))
    wait_ready(control_plane, "xp/handed-over", namespace)


def test_a_restarted_operator_resumes_from_what_is_stored_in_the_cluster(
    control_plane: Any, namespace: str, tmp_path: Path
) -> None:
    install_crds(control_plane)
    lease = f"restart-{uuid.uuid4().hex[:6]}"
    first = OperatorProcess(control_plane, tmp_path / "first.log", "first", lease)
    try:
        wait_for("the operator to lead", lambda: lease_holder(control_plane, lease) == "first")
        apply(
            control_plane, execution_policy("chat", namespace, boundaries={"maxRequestBytes": 10})
        )
        apply(control_plane, model_pod("chat-0", namespace, "chat"))
        wait_ready(control_plane, "xp/chat", namespace)
        good = wait_for("the config", lambda: pod_config(control_plane, namespace, "chat-0"))
    finally:
        first.stop()
    # While no operator runs, the policy gets an invalid update.
    broken = {"response": {"redaction": [{"name": "r", "pattern": "(unclosed"}]}}
    apply(control_plane, execution_policy("chat", namespace, validation=broken))
    second = OperatorProcess(control_plane, tmp_path / "second.log", "second", lease)
    try:
        obj = wait_for(
            "the restarted operator to resume the update",
            lambda: (
                (o := get_json(control_plane, "xp/chat", "-n", namespace))
                and (o.get("status") or {}).get("observedGeneration") == 2
                and o
            ),
        )
        invalid = next(c for c in obj["status"]["conditions"] if c["type"] == "Invalid")
        assert invalid["status"] == "True"
        assert obj["status"]["lastGoodGeneration"] == 1
        # The previous config is still what the pod reads: it came from the ConfigMap.
        assert pod_config(control_plane, namespace, "chat-0") == good
    finally:
        second.stop()
        print(f"--- second\n{second.log.read_text()[-3000:]}")
