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

from agentcore.api.common import Condition, ConditionStatus, set_condition
from agentcore.api.exports import ExportPhase
from agentcore.controllers.common import batchjob as job_status
from agentcore.controllers.exportjob.children import export_id
from agentcore.exports.settings import ANNOTATION_CREATED_BY, ANNOTATION_ESTIMATED_SECONDS

Obj = dict[str, Any]

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
CONDITION_TYPES = ("Admitted", "Running", "Complete", "Failed", "Cancelled")


@dataclass(frozen=True)
class Slot:
    """The queue's verdict for one ExportJob."""

    admit: bool = False  # create its Job now
    position: int | None = None  # exports ahead of it while it waits; None once admitted


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass
class ExportDecision:
    status: Obj
    create_job: bool = False
    suspend_job: bool = False
    events: list[Event] = field(default_factory=list)


def _phase(ej: Obj) -> ExportPhase | None:
    value = (ej.get("status") or {}).get("phase")
    return ExportPhase(value) if value else None


def is_terminal(ej: Obj) -> bool:
    phase = _phase(ej)
    return phase is not None and phase.is_terminal


def cancel_requested(ej: Obj) -> bool:
    return bool((ej["spec"].get("cancel") or {}).get("requested"))


def plan_queue(exportjobs: list[Obj], has_job: set[str], max_concurrent: int) -> dict[str, Slot]:
    """At most `max_concurrent` live exports per namespace, first come first served.

    An export holds a slot from the creation of its Job until it reaches a final phase (a cancelled
    one too, until its pod is gone); a cancelled export without a Job is never admitted."""
    live = [ej for ej in exportjobs if not is_terminal(ej)]
    live.sort(key=lambda ej: (ej["metadata"].get("creationTimestamp", ""), ej["metadata"]["name"]))
    free = max_concurrent - sum(ej["metadata"]["name"] in has_job for ej in live)
    slots: dict[str, Slot] = {}
    waiting = 0
    for ej in live:
        name = ej["metadata"]["name"]
        if name in has_job or cancel_requested(ej):
            slots[name] = Slot()
        elif free > 0:
            slots[name] = Slot(admit=True)
            free -= 1
        else:
            slots[name] = Slot(position=waiting)
            waiting += 1
    return slots


def _stamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Conditions:
    def __init__(self, raw: list[Obj], generation: int | None, now: dt.datetime) -> None:
        self.before = {c["type"]: c.get("status") for c in raw}
        self.items = [Condition.model_validate(c) for c in raw]
        self.generation, self.now = generation, now

    def set(self, kind: str, value: bool, reason: str, message: str = "") -> None:
        status = ConditionStatus.TRUE if value else ConditionStatus.FALSE
        self.items = set_condition(self.items, kind, status, reason, message, self.generation, self.now)

    def flipped(self) -> list[Condition]:
        """Conditions whose status changed in this pass (an Event each)."""
        return [c for c in self.items if self.before.get(c.type) != c.status.value]

    def dump(self) -> list[Obj]:
        return [c.to_resource() for c in self.items]


def _bookkeeping(ej: Obj) -> Obj:
    meta, status = ej["metadata"], dict(ej.get("status") or {})
    desired = {k: status[k] for k in OPERATOR_FIELDS if k in status}
    desired["exportId"] = export_id(ej)
    desired["observedGeneration"] = meta.get("generation", 1)
    annotations = meta.get("annotations") or {}
    if annotations.get(ANNOTATION_CREATED_BY):
        desired["createdBy"] = annotations[ANNOTATION_CREATED_BY][:253]
    estimate = annotations.get(ANNOTATION_ESTIMATED_SECONDS, "")
    if estimate.isdigit():
        desired["estimatedDurationSeconds"] = int(estimate)
    timing = dict(desired.get("timing") or {})
    timing.setdefault("requestedAt", meta.get("creationTimestamp"))
    desired["timing"] = {k: v for k, v in timing.items() if v is not None}
    return desired


def _finish(desired: Obj, phase: ExportPhase, now: dt.datetime, error: str | None = None) -> None:
    desired["phase"] = phase.value
    timing = desired["timing"]
    timing.setdefault("completedAt", _stamp(now))
    requested = timing.get("requestedAt")
    if requested:
        start = dt.datetime.fromisoformat(str(requested).replace("Z", "+00:00"))
        timing["durationSeconds"] = max(0.0, (now - start).total_seconds())
    if error is not None:
        desired["error"] = error[:32768]


def decide(ej: Obj, job: Obj | None, slot: Slot, now: dt.datetime) -> ExportDecision:
    status = ej.get("status") or {}
    desired = _bookkeeping(ej)
    conds = _Conditions(status.get("conditions") or [], ej["metadata"].get("generation"), now)
    decision = ExportDecision(desired)
    phase = _phase(ej)
    if phase is None or not phase.is_terminal:
        if cancel_requested(ej):
            _cancel(ej, job, desired, decision, now)
        elif job is not None:
            _with_job(ej, job, desired, now)
        else:
            _waiting(slot, desired, decision)
    _conditions(conds, desired, job is not None or decision.create_job, slot)
    desired["conditions"] = conds.dump()
    # "Running" turning False is told by the Completed/Failed/Cancelled event that comes with it.
    flipped = [c for c in conds.flipped() if c.type != "Running" or c.status == ConditionStatus.TRUE]
    decision.events = [_event(c, desired, status) for c in flipped]
    return decision


def _cancel(ej: Obj, job: Obj | None, desired: Obj, decision: ExportDecision, now: dt.datetime) -> None:
    desired.pop("positionInQueue", None)
    stopped = job is None or job_status.job_finished(job) is not None
    stopped = stopped or (job_status.job_suspended(job) and job_status.job_pods_gone(job))
    if not stopped:
        decision.suspend_job = True  # the Job controller deletes the pod: SIGTERM, then gone
        return
    reason = (ej["spec"].get("cancel") or {}).get("reason")
    _finish(desired, ExportPhase.CANCELLED, now, f"cancelled: {reason}" if reason else None)


def _with_job(ej: Obj, job: Obj, desired: Obj, now: dt.datetime) -> None:
    desired["positionInQueue"] = 0
    finished = job_status.job_finished(job)
    if finished is None:
        desired.setdefault("phase", ExportPhase.PENDING.value)
        return
    # The pod reports Completed/Failed itself before it exits; a finished Job with a live phase
    # means it could not (crash loop, deadline, lost pod).
    failed = job_status.job_condition(job, "Failed") or {}
    pod_error = (ej.get("status") or {}).get("error")
    reason = failed.get("reason") or "ExporterExited"
    message = failed.get("message") or "the exporter exited without reporting a result"
    _finish(desired, ExportPhase.FAILED, now, f"{reason}: {pod_error or message}")


def _waiting(slot: Slot, desired: Obj, decision: ExportDecision) -> None:
    desired.setdefault("phase", ExportPhase.PENDING.value)
    if slot.admit:
        decision.create_job = True
        desired["positionInQueue"] = 0
    else:
        desired["positionInQueue"] = slot.position or 0


def _conditions(conds: _Conditions, desired: Obj, admitted: bool, slot: Slot) -> None:
    phase = ExportPhase(desired["phase"]) if desired.get("phase") else ExportPhase.PENDING
    if admitted:
        conds.set("Admitted", True, "Admitted", "export Job created")
    elif not phase.is_terminal:
        ahead = slot.position or 0
        conds.set(
            "Admitted",
            False,
            "Queued",
            f"waiting for a free slot: {ahead} export(s) of this namespace ahead in the queue",
        )
    conds.set("Running", phase == ExportPhase.RUNNING, phase.value)
    for kind, terminal in (
        ("Complete", ExportPhase.COMPLETED),
        ("Failed", ExportPhase.FAILED),
        ("Cancelled", ExportPhase.CANCELLED),
    ):
        if phase == terminal:
            conds.set(kind, True, terminal.value, desired.get("error") or "")


def _event(cond: Condition, desired: Obj, status: Obj) -> Event:
    true = cond.status == ConditionStatus.TRUE
    if cond.type == "Admitted":
        return Event("Normal", "Admitted" if true else "Queued", cond.message)
    if cond.type == "Running":
        return Event("Normal", "Started", "the export pod is writing the file")
    if cond.type == "Failed":
        return Event("Warning", "Failed", cond.message or "export failed")
    if cond.type == "Cancelled":
        return Event("Normal", "Cancelled", cond.message or "export cancelled")
    out = status.get("output") or {}
    return Event(
        "Normal",
        "Completed",
        f"{out.get('rowCount')} rows, {out.get('fileSizeBytes')} bytes in {out.get('fileRef')}; "
        f"expires {out.get('expiresAt')}",
    )


def changed_fields(current: Obj, desired: Obj) -> Obj:
    """The merge patch that turns `current` into `desired` for the operator's fields only."""
    patch: Obj = {}
    for key in OPERATOR_FIELDS:
        if key in desired and desired[key] != current.get(key):
            patch[key] = desired[key]
        elif key not in desired and key in current and key in ("positionInQueue", "error"):
            patch[key] = None
    return patch
