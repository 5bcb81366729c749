"""A typed view of the export's batch/v1 Job: the few fields the controller reads.

Local for now; controllers/common/batchjob.py is getting a shared view on another branch, which
this one should give way to when both are merged.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from agentcore.api.common import CamelModel, ConditionStatus, ObjectMeta
from agentcore.api.labels import EXPORTJOB


class JobConditionType(StrEnum):
    """Terminal conditions of a batch/v1 Job."""

    COMPLETE = "Complete"
    FAILED = "Failed"


class _View(CamelModel):
    # A view, not the schema: whatever else the apiserver returns is ignored.
    model_config = ConfigDict(extra="ignore")


class JobCondition(_View):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None


class JobSpec(_View):
    suspend: bool | None = None


class JobStatus(_View):
    active: int | None = None
    terminating: int | None = None
    conditions: list[JobCondition] | None = None


class ChildJob(_View):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: JobSpec = Field(default_factory=JobSpec)
    status: JobStatus = Field(default_factory=JobStatus)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> ChildJob:
        return cls.model_validate(raw)

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def suspended(self) -> bool:
        return bool(self.spec.suspend)

    @property
    def pods_gone(self) -> bool:
        return not self.status.active and not self.status.terminating

    def condition(self, kind: JobConditionType) -> JobCondition | None:
        """The condition of that type if it holds (status True)."""
        return next(
            (c for c in self.status.conditions or () if c.type == kind and c.status == ConditionStatus.TRUE),
            None,
        )

    @property
    def finished(self) -> JobConditionType | None:
        """Complete or Failed once the Job is done, else None."""
        return next((kind for kind in JobConditionType if self.condition(kind) is not None), None)


def jobs_by_exportjob(items: list[dict[str, Any]]) -> dict[str, ChildJob]:
    """Listed export Jobs by the name of the ExportJob they run (their label)."""
    jobs = (ChildJob.parse(item) for item in items)
    return {owner: job for job in jobs if (owner := job.metadata.label(EXPORTJOB))}
