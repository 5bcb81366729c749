"""Reading a TrainingJob's child Job, and the operator's share of the TrainingJob status."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Obj = dict[str, Any]


class _View(BaseModel):
    # A view, not a schema: the apiserver owns batch/v1, so unknown fields are simply ignored.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class JobCondition(_View):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None


class JobSpecView(_View):
    suspend: bool | None = None


class JobStatusView(_View):
    active: int | None = None
    ready: int | None = None
    terminating: int | None = None
    conditions: list[JobCondition] | None = None


class JobMetaView(_View):
    name: str | None = None


class BatchJob(_View):
    """The fields of a batch/v1 Job that the controllers read."""

    metadata: JobMetaView = Field(default_factory=JobMetaView)
    spec: JobSpecView = Field(default_factory=JobSpecView)
    status: JobStatusView = Field(default_factory=JobStatusView)

    def condition(self, kind: str) -> JobCondition | None:
        """The condition of this type whose status is True, or None."""
        return next((c for c in self.status.conditions or [] if c.type == kind and c.status == "True"), None)

    @property
    def finished(self) -> str | None:
        """'Complete', 'Failed' or None."""
        return next((kind for kind in ("Complete", "Failed") if self.condition(kind)), None)

    @property
    def suspended(self) -> bool:
        return bool(self.spec.suspend)

    @property
    def active(self) -> int:
        return self.status.active or 0

    @property
    def ready(self) -> int:
        return self.status.ready or 0

    @property
    def pods_gone(self) -> bool:
        return not self.status.active and not self.status.terminating


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
