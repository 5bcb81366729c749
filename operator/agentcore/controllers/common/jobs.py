"""Suspending and resuming a child Job, as both controllers do (a TrainingJob's suspend, cancel and
budget stop; an ExportJob's cancel)."""

from __future__ import annotations

from typing import Any

from agentcore.api.batchjob import BatchJob
from agentcore.kube.client import JOBS, KubeClient

Obj = dict[str, Any]


async def set_suspend(kube: KubeClient, job: BatchJob, suspend: bool, namespace: str) -> Obj | None:
    """Patch ``spec.suspend`` of `job` as this view of it shows it; None when there is nothing to
    do: it is so already, or it ended (patching an ended Job would only confuse its history).

    The patch carries the view's resourceVersion, so a view older than the Job is refused with a
    409 (ApiError) instead of suspending a Job whose end the watch had not yet brought (the chaos
    suite, seed 101, left a completed Job suspended). The controllers treat a 409 as "the next
    event reconciles again", and that event shows the Job as it now is."""
    if job.ending or job.suspended == suspend:
        return None
    body: Obj = {"spec": {"suspend": suspend}}
    if job.metadata.resource_version:
        body["metadata"] = {"resourceVersion": job.metadata.resource_version}
    result: Obj = await kube.patch(JOBS, job.name, body, namespace)
    return result
