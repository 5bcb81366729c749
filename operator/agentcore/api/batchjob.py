"""A typed view of a batch/v1 Job: the fields the controllers and the export runtime read.

Both controllers run their work in a child Job, and the export runtime counts a trainer Job's
retries, so the view lives in the shared core rather than beside one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from agentcore.api.common import CamelModel, ConditionStatus, ObjectMeta


class JobConditionType(StrEnum):
    """Terminal conditions of a batch/v1 Job."""

    COMPLETE = "Complete"
    FAILED = "Failed"


# Set by the Job controller (Kubernetes 1.31+) as soon as the Job's outcome is decided, before
# Complete / Failed, which wait until its pods are gone.
ENDING_CONDITIONS = ("SuccessCriteriaMet", "FailureTarget")


class _View(CamelModel):
    # A view, not the schema: the apiserver owns batch/v1, so whatever else it returns is ignored.
    model_config = ConfigDict(extra="ignore")


class JobCondition(_View):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None


class JobSpec(_View):
    suspend: bool | None = None
    completions: int | None = None


class JobStatus(_View):
    active: int | None = None
    ready: int | None = None
    terminating: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    conditions: list[JobCondition] | None = None


class BatchJob(_View):
    """The fields of a batch/v1 Job this project reads."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: JobSpec = Field(default_factory=JobSpec)
    status: JobStatus = Field(default_factory=JobStatus)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> BatchJob:
        return cls.model_validate(raw)

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    def condition(self, kind: str) -> JobCondition | None:
        """The condition of that type if it holds (status True), else None."""
        return next(
            (c for c in self.status.conditions or () if c.type == kind and c.status == ConditionStatus.TRUE),
            None,
        )

    @property
    def finished(self) -> JobConditionType | None:
        """Complete or Failed once the Job is done, else None."""
        return next((kind for kind in JobConditionType if self.condition(kind) is not None), None)

    @property
    def ending(self) -> bool:
        """Finished, or its outcome decided: an ending condition, or as many succeeded pods as
        completions (the Job controller counts them before it sets any condition). There is
        nothing left to suspend or resume."""
        if self.finished is not None or any(self.condition(kind) for kind in ENDING_CONDITIONS):
            return True
        return (self.status.succeeded or 0) >= (self.spec.completions or 1)

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
    def failed(self) -> int:
        """Pods that failed: the retries the Job's backoffLimit has used."""
        return self.status.failed or 0

    @property
    def pods_gone(self) -> bool:
        return not self.status.active and not self.status.terminating


def jobs_by_owner(
    items: Iterable[Mapping[str, Any]], kind: str, uids: Mapping[str, str | None]
) -> dict[str, BatchJob]:
    """Listed Jobs keyed by the name of their controller of ``kind``, only where that controller
    is the very object of ``uids`` (name -> uid): not a label, whose value a long name does not
    fit and anyone may plant, nor an owner reference to a deleted namesake."""
    jobs: dict[str, BatchJob] = {}
    for item in items:
        job = BatchJob.parse(item)
        owner = job.metadata.controller()
        if owner is not None and owner.kind == kind and owner.uid == uids.get(owner.name):
            jobs[owner.name] = job
    return jobs
