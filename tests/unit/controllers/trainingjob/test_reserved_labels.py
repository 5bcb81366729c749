"""A TrainingJob whose spec.labels name one of the operator's own labels fails validation naming
the key (issue 12: they replaced the operator's labels on the trainer Job), and gets no Job."""

from __future__ import annotations

from agentcore.kube.client import JOBS
from agentcore.kube.client import TRAININGJOB_RESOURCE as TRAININGJOBS
from tests.unit.controllers.trainingjob.test_events_crash import NAME, NS, reconciler, watch, world


async def test_a_reserved_label_fails_the_job_naming_it() -> None:
    kube = world()
    kube.objects[(TRAININGJOBS.plural, NAME)]["spec"]["labels"] = {"training.agentcore.io/job-id": "x"}
    operator = reconciler(kube)
    watch(kube, operator)
    await operator.reconcile(NS, NAME)
    status = kube.objects[(TRAININGJOBS.plural, NAME)]["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "ValidationFailed")
    assert "spec.labels['training.agentcore.io/job-id']" in status["message"]
    assert (JOBS.plural, f"{NAME}-trainer") not in kube.objects
