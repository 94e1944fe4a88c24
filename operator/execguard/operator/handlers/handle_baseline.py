"""Reconciling DriftBaseline objects: status bookkeeping until scoring takes over.

A baseline with an inline reference becomes `Active` with that reference copied
into status; one that captures starts in `Capturing` (the evaluator fills the
reference in and moves it on). Phase and captured data live in status, so a
restarted or failed-over operator resumes where the last one stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from execguard.operator.api.baseline import (
    BaselinePhase,
    DriftBaselineSpec,
    DriftBaselineStatus,
)
from execguard.operator.handlers.context import EventSink, OperatorContext
from execguard.operator.status.conditions import valid_conditions


async def reconcile_baseline(
    ctx: OperatorContext, body: Mapping[str, Any], emit: EventSink
) -> DriftBaselineStatus:
    """The status a DriftBaseline should have after this reconcile."""
    with ctx.metrics.timed("DriftBaseline"):
        generation = int(body["metadata"].get("generation", 0))
        spec = DriftBaselineSpec.model_validate(body.get("spec") or {})
        status = DriftBaselineStatus.model_validate(body.get("status") or {})
        update: dict[str, Any] = {"observed_generation": generation}
        phase = status.phase
        if spec.reference.inline is not None:
            update["captured_reference"] = list(spec.reference.inline.features)
            if phase in (None, BaselinePhase.CAPTURING):
                phase = BaselinePhase.ACTIVE
        elif phase is None:
            phase = BaselinePhase.CAPTURING
            update["capture_started_at"] = ctx.clock()
            update["captured_samples"] = 0
        if phase is not status.phase:
            emit("Normal", str(phase), f"baseline is {phase} (was {status.phase or 'new'})")
        update["phase"] = phase
        message = (
            f"{phase}: measuring {len(spec.features)} feature(s) of "
            f"{spec.target_ref.kind} {spec.target_ref.name}"
        )
        update["conditions"] = valid_conditions(
            status.conditions or [], generation, ctx.clock(), message
        )
        ctx.metrics.reconciles.labels(kind="DriftBaseline", result="valid").inc()
        return status.model_copy(update=update)
