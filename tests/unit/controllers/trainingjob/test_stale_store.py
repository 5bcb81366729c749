"""The Job's end can reach the operator before the trainer's last status report does (two watches):
the reconciler reads the TrainingJob from the apiserver then, instead of failing a finished run."""

from __future__ import annotations

import copy

from agentcore.kube.client import JOBS
from agentcore.kube.client import TRAININGJOB_RESOURCE as TRAININGJOBS
from tests.unit.controllers.trainingjob.test_events_crash import (
    NAME,
    NS,
    pod_ready,
    reconciler,
    trainer_done,
    watch,
    world,
)


async def test_a_job_that_ended_before_the_watch_brought_the_final_report_completes() -> None:
    kube = world()
    operator = reconciler(kube)
    for step in (lambda k: None, pod_ready):
        step(kube)
        watch(kube, operator)
        await operator.reconcile(NS, NAME)
    assert kube.objects[(TRAININGJOBS.plural, NAME)]["status"]["phase"] == "Running"
    trainer_done(kube)  # the trainer reported Completed, then its Job completed
    operator.observe_job(copy.deepcopy(kube.objects[(JOBS.plural, f"{NAME}-trainer")]), NAME)  # only the Job
    await operator.reconcile(NS, NAME)
    status = kube.objects[(TRAININGJOBS.plural, NAME)]["status"]
    assert (status["phase"], status["reason"]) == ("Completed", "TrainingComplete")
