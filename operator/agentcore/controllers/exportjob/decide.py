"""The ExportJob state machine and the per-tenant queue, as pure functions of what is observed.

Ownership of the status: the export pod writes Running, Completed and Failed (with output,
redactionApplied, timing.startedAt/completedAt) when it runs; the operator writes Pending, the
queue position, Cancelled, Failed when the pod could not report (its Job failed), conditions and
bookkeeping. Each side changes the phase only when the other cannot be writing: the operator moves
to Cancelled or Failed only once the export Job has no pods left.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from agentcore.api.batchjob import BatchJob, JobConditionType
from agentcore.api.common import Condition, ConditionStatus, set_condition
from agentcore.api.exports import (
    ExportConditionReason,
    ExportConditionType,
    ExportEventReason,
    ExportJob,
    ExportJobStatus,
    ExportPhase,
    ExportTiming,
)
from agentcore.exports.queue import Slot
from agentcore.exports.settings import ANNOTATION_CREATED_BY, ANNOTATION_ESTIMATED_SECONDS

Obj = dict[str, Any]

# Status fields the operator writes (resource keys); the export pod owns the others.
OPERATOR_FIELDS = (
    "phase",
    "conditions",
    "observedGeneration",
    "exportId",
    "positionInQueue",
    "estimatedDurationSeconds",
    "createdBy",
    "timing",
    "error",
)
CLEARED_FIELDS = ("positionInQueue", "error")  # removed from the status when no longer desired
EXPORTER_EXITED = "ExporterExited"  # why a Job failed when its conditions do not say
MAX_ERROR = 32768
MAX_CREATED_BY = 253
_TERMINAL_CONDITIONS = {
    ExportPhase.COMPLETED: ExportConditionType.COMPLETE,
    ExportPhase.FAILED: ExportConditionType.FAILED,
    ExportPhase.CANCELLED: ExportConditionType.CANCELLED,
}


@dataclass(frozen=True)
class Event:
    type: str
    reason: ExportEventReason
    message: str


@dataclass
class ExportDecision:
    status: ExportJobStatus
    create_job: bool = False
    suspend_job: bool = False
    events: list[Event] = field(default_factory=list)


def _bookkeeping(ej: ExportJob, created_by_verified: bool) -> ExportJobStatus:
    """The current status with the operator's bookkeeping fields filled in; the creator only
    from an annotation that admission or the API server's signature vouches for."""
    meta, status = ej.metadata, ej.observed_status
    estimate = meta.annotation(ANNOTATION_ESTIMATED_SECONDS) or ""
    created_by = meta.annotation(ANNOTATION_CREATED_BY) if created_by_verified else None
    timing = status.timing or ExportTiming()
    if timing.requested_at is None and meta.creation_timestamp:
        timing = timing.model_copy(update={"requested_at": _parse(meta.creation_timestamp)})
    update: Obj = {
        "export_id": ej.export_id,
        "observed_generation": meta.generation,
        "timing": timing,
        "created_by": created_by[:MAX_CREATED_BY] if created_by else status.created_by,
    }
    if estimate.isdigit():
        update["estimated_duration_seconds"] = int(estimate)
    # Validated, not model_copy(update=...): the export id must be a UUID like the schema says.
    return ExportJobStatus.model_validate({**status.model_dump(), **update})


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def fail(desired: ExportJobStatus, error: str, now: dt.datetime) -> ExportJobStatus:
    """``desired`` moved to Failed with ``error`` (e.g. a child name held by someone else)."""
    failed = desired.model_copy(deep=True)
    _finish(failed, ExportPhase.FAILED, now, error)
    return failed


def _finish(desired: ExportJobStatus, phase: ExportPhase, now: dt.datetime, error: str | None = None) -> None:
    desired.phase = phase
    timing = desired.timing or ExportTiming()
    # metav1.Time has second precision; so has the stamp, to keep reconciles idempotent.
    completed = timing.completed_at or now.astimezone(dt.UTC).replace(microsecond=0)
    duration = timing.duration_seconds
    if timing.requested_at is not None:
        duration = max(0.0, (now - timing.requested_at).total_seconds())
    desired.timing = timing.model_copy(update={"completed_at": completed, "duration_seconds": duration})
    if error is not None:
        desired.error = error[:MAX_ERROR]


def decide(
    ej: ExportJob, job: BatchJob | None, slot: Slot, now: dt.datetime, created_by_verified: bool = True
) -> ExportDecision:
    """`created_by_verified`: whether the created-by annotation names the requester (true where
    the admission policy checks it; else only for an ExportJob the API server signed)."""
    desired = _bookkeeping(ej, created_by_verified)
    decision = ExportDecision(desired)
    if not ej.phase.is_terminal:
        if ej.cancel_requested:
            _cancel(ej, job, decision, now)
        elif job is not None:
            _with_job(ej, job, desired, now)
        else:
            _waiting(slot, decision)
    conds = _Conditions(ej, now)
    _conditions(conds, desired, job is not None or decision.create_job, slot)
    desired.conditions = conds.items
    # "Running" turning False is told by the Completed/Failed/Cancelled event that comes with it.
    flipped = [
        c
        for c in conds.flipped()
        if c.type != ExportConditionType.RUNNING or c.status == ConditionStatus.TRUE
    ]
    decision.events = [_event(c.type, c.status, c.message, ej.observed_status) for c in flipped]
    return decision


def _cancel(ej: ExportJob, job: BatchJob | None, decision: ExportDecision, now: dt.datetime) -> None:
    decision.status.position_in_queue = None
    stopped = job is None or job.finished is not None or (job.suspended and job.pods_gone)
    if not stopped:
        decision.suspend_job = True  # the Job controller deletes the pod: SIGTERM, then gone
        return
    reason = ej.spec.cancel.reason if ej.spec.cancel else None
    _finish(decision.status, ExportPhase.CANCELLED, now, f"cancelled: {reason}" if reason else None)


def _with_job(ej: ExportJob, job: BatchJob, desired: ExportJobStatus, now: dt.datetime) -> None:
    desired.position_in_queue = 0
    if job.finished is None:
        desired.phase = desired.phase or ExportPhase.PENDING
        return
    # The pod reports Completed/Failed itself before it exits; a finished Job with a live phase
    # means it could not (crash loop, deadline, lost pod).
    failed = job.condition(JobConditionType.FAILED)
    reason = (failed.reason if failed else None) or EXPORTER_EXITED
    message = (failed.message if failed else None) or "the exporter exited without reporting a result"
    _finish(desired, ExportPhase.FAILED, now, f"{reason}: {ej.observed_status.error or message}")


def _waiting(slot: Slot, decision: ExportDecision) -> None:
    desired = decision.status
    desired.phase = desired.phase or ExportPhase.PENDING
    decision.create_job = slot.admit
    desired.position_in_queue = 0 if slot.admit else slot.position or 0


class _Conditions:
    """The ExportJob's conditions as this pass sets them, and which ones flipped."""

    def __init__(self, ej: ExportJob, now: dt.datetime) -> None:
        self.items = list(ej.observed_status.conditions or [])
        self.before = {c.type: c.status for c in self.items}
        self.generation, self.now = ej.metadata.generation, now

    def set(self, kind: ExportConditionType, value: bool, reason: str, message: str = "") -> None:
        status = ConditionStatus.TRUE if value else ConditionStatus.FALSE
        self.items = set_condition(self.items, kind, status, reason, message, self.generation, self.now)

    def flipped(self) -> list[Condition]:
        """Conditions whose status changed in this pass (an Event each)."""
        return [c for c in self.items if self.before.get(c.type) != c.status]


def _conditions(conds: _Conditions, desired: ExportJobStatus, admitted: bool, slot: Slot) -> None:
    phase = desired.phase or ExportPhase.PENDING
    if admitted:
        conds.set(ExportConditionType.ADMITTED, True, ExportConditionReason.ADMITTED, "export Job created")
    elif not phase.is_terminal:
        ahead = slot.position or 0
        conds.set(
            ExportConditionType.ADMITTED,
            False,
            ExportConditionReason.QUEUED,
            f"waiting for a free slot: {ahead} export(s) of this namespace ahead in the queue",
        )
    conds.set(ExportConditionType.RUNNING, phase == ExportPhase.RUNNING, phase)
    terminal = _TERMINAL_CONDITIONS.get(phase)
    if terminal is not None:
        conds.set(terminal, True, phase, desired.error or "")


def _event(kind: str, status: ConditionStatus, message: str, observed: ExportJobStatus) -> Event:
    true = status == ConditionStatus.TRUE
    if kind == ExportConditionType.ADMITTED:
        return Event("Normal", ExportEventReason.ADMITTED if true else ExportEventReason.QUEUED, message)
    if kind == ExportConditionType.RUNNING:
        return Event("Normal", ExportEventReason.STARTED, "the export pod is writing the file")
    if kind == ExportConditionType.FAILED:
        return Event("Warning", ExportEventReason.FAILED, message or "export failed")
    if kind == ExportConditionType.CANCELLED:
        return Event("Normal", ExportEventReason.CANCELLED, message or "export cancelled")
    out = observed.output.to_resource() if observed.output else {}
    return Event(
        "Normal",
        ExportEventReason.COMPLETED,
        f"{out.get('rowCount')} rows, {out.get('fileSizeBytes')} bytes in {out.get('fileRef')}; "
        f"expires {out.get('expiresAt')}",
    )


def changed_fields(current: ExportJobStatus, desired: ExportJobStatus) -> Obj:
    """The merge patch that turns `current` into `desired` for the operator's fields only."""
    now, want = current.to_resource(), desired.to_resource()
    patch: Obj = {}
    for key in OPERATOR_FIELDS:
        if key in want and want[key] != now.get(key):
            patch[key] = want[key]
        elif key not in want and key in now and key in CLEARED_FIELDS:
            patch[key] = None
    return patch
