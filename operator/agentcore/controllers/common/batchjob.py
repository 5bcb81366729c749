"""Reading a TrainingJob's child Job, and the operator's share of the TrainingJob status."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

# Status fields the operator writes; everything else under status belongs to the trainer.
OPERATOR_FIELDS = (
    "phase",
    "conditions",
    "observedGeneration",
    "jobId",
    "totalIterations",
    "budgetUsd",
    "startedAt",
    "completedAt",
    "cancellation",
    "reason",
    "message",
)


def job_condition(job: Obj | None, kind: str) -> Obj | None:
    for cond in (job or {}).get("status", {}).get("conditions", []) or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def job_finished(job: Obj | None) -> str | None:
    """'Complete', 'Failed' or None."""
    if job_condition(job, "Complete"):
        return "Complete"
    if job_condition(job, "Failed"):
        return "Failed"
    return None


def job_pods_gone(job: Obj | None) -> bool:
    status = (job or {}).get("status", {})
    return not status.get("active") and not status.get("terminating")


def job_active(job: Obj | None) -> int:
    return int((job or {}).get("status", {}).get("active") or 0)


def job_ready(job: Obj | None) -> int:
    return int((job or {}).get("status", {}).get("ready") or 0)


def job_suspended(job: Obj | None) -> bool:
    return bool((job or {}).get("spec", {}).get("suspend"))


def operator_view(status: Obj) -> Obj:
    return {k: status[k] for k in OPERATOR_FIELDS if k in status}


def changed_fields(current: Obj, desired: Obj) -> Obj:
    """The merge patch that turns `current` into `desired` for the operator's fields only."""
    patch: Obj = {}
    for key in OPERATOR_FIELDS:
        if key in desired and desired[key] != current.get(key):
            patch[key] = desired[key]
        elif key not in desired and key in current:
            patch[key] = None
    return patch
