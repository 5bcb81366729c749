"""Against a real kube-apiserver: a Job is suspended or resumed only as the view that decided it
saw it, so a view older than the Job (its end not yet watched) changes nothing."""

from __future__ import annotations

import json

import pytest

from agentcore.api.batchjob import BatchJob
from agentcore.controllers.common.jobs import set_suspend
from agentcore.kube import config as kube_config
from agentcore.kube.client import JOBS, ApiError, KubeClient

pytestmark = pytest.mark.integration

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "stale-view"},
    "spec": {
        "suspend": True,  # never runs a pod: the test only needs the object
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}},
    },
}


async def test_a_stale_view_cannot_resume_a_job_that_changed_meanwhile(control_plane, namespace):
    async with KubeClient(kube_config.load(control_plane.kubeconfig)) as kube:
        seen = BatchJob.parse(await kube.create(JOBS, JOB, namespace))
        # The Job changes after the view was taken (as its status does when it ends).
        await kube.patch(JOBS, "stale-view", {"metadata": {"labels": {"changed": "yes"}}}, namespace)
        with pytest.raises(ApiError) as refused:
            await set_suspend(kube, seen, False, namespace)
        assert refused.value.status == 409
        now = control_plane.kubectl("-n", namespace, "get", "job", "stale-view", "-o", "json").stdout
        assert json.loads(now)["spec"]["suspend"] is True
        # A current view goes through.
        fresh = BatchJob.parse(await kube.get(JOBS, "stale-view", namespace))
        resumed = await set_suspend(kube, fresh, False, namespace)
        assert resumed is not None and resumed["spec"]["suspend"] is False
        await kube.delete(JOBS, "stale-view", namespace, propagationPolicy="Background")
