"""The operator's per-job maps do not grow with every job it ever saw (issue 12, low): locks,
outstanding webhook notifications (and, in test_webhooks, queues and workers) are dropped once a
job needs none."""

from __future__ import annotations

from agentcore.api.training import WebhookEvent
from agentcore.controllers.trainingjob.decide import Notification
from tests.unit.controllers.trainingjob.test_events_crash import NAME, NS, STEPS, UID, reconciler, world


async def test_no_lock_is_kept_after_a_reconcile():
    kube = world()
    operator = reconciler(kube)
    for step in STEPS:
        step(kube)
        await operator.reconcile(NS, NAME)
    assert operator._locks == {}


async def test_a_deleted_job_leaves_nothing_behind():
    operator = reconciler(world())
    note = Notification("started", WebhookEvent.JOB_STARTED, {})
    operator._outstanding[(UID, "started")] = (1, note)
    operator._outstanding[("another-uid", "started")] = (1, note)
    operator.forget(NS, NAME, UID)
    assert list(operator._outstanding) == [("another-uid", "started")]
