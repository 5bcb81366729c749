"""The informer-style store keeps the newest body; a reconcile of a fresh TrainingJob makes
exactly the calls its objects need (bench/operator_scale.py measures the same against an apiserver)."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from agentcore.api.batchjob import BatchJob
from agentcore.controllers.common.cache import Store, newer
from agentcore.kube.client import TRAININGJOB_RESOURCE as TRAININGJOBS
from tests.unit.controllers.trainingjob.test_events_crash import NAME, NS, FakeKube, reconciler, world


def job(rv: str, active: int) -> dict[str, Any]:
    return {"metadata": {"name": "j", "namespace": "ns", "resourceVersion": rv}, "status": {"active": active}}


def test_newer_compares_integer_versions_and_lets_opaque_ones_through():
    assert newer("10", "9") and newer("9", "9") and not newer("9", "10")
    assert newer("abc", "10") and newer(None, "3") and newer("3", None)


def test_store_never_goes_back_to_an_older_body():
    store: Store[BatchJob] = Store(BatchJob.model_validate)
    store.observe(job("12", 2))
    kept = store.observe(job("11", 1))  # an event delivered after our own write's response
    assert kept.status.active == 2 and store.get("ns", "j") is kept
    assert store.observe(job("13", 3)).status.active == 3
    store.observe(job("14", 4), name="owner")
    assert store.get("ns", "owner") is not None and len(store) == 2
    store.forget("ns", "j")
    assert store.get("ns", "j") is None


class CountingKube(FakeKube):
    def __init__(self) -> None:
        super().__init__()
        self.verbs: Counter[str] = Counter()

    async def get(self, res, name, namespace=None, sub=None):  # type: ignore[no-untyped-def]
        self.verbs[f"get {res.plural}"] += 1
        return await super().get(res, name, namespace, sub)

    async def create(self, res, body, namespace=None, **kw):  # type: ignore[no-untyped-def]
        self.verbs[f"create {res.plural}"] += 1
        return await super().create(res, body, namespace, **kw)

    async def patch(self, res, name, body, namespace=None, **kw):  # type: ignore[no-untyped-def]
        self.verbs[f"patch {res.plural}"] += 1
        return await super().patch(res, name, body, namespace, **kw)


async def test_a_fresh_trainingjob_costs_only_its_own_objects():
    kube = CountingKube()
    kube.objects.update(world().objects)
    operator = reconciler(kube)  # type: ignore[arg-type]
    operator.observe_trainingjob(copy.deepcopy(kube.objects[(TRAININGJOBS.plural, NAME)]))  # the ADDED event
    await operator.reconcile(NS, NAME)
    assert kube.verbs == Counter(
        {
            "get configmaps": 1,  # the data, validated
            "create serviceaccounts": 1,
            "create roles": 1,
            "create rolebindings": 1,  # no credentials Secret: the trainer uses the ingestion endpoint
            "create jobs": 1,
            "create events": 2,  # TrainerJobCreated, PhaseQueued
            "patch trainingjobs": 1,  # phase, conditions and the Events' keys at once
        }
    )
    status = kube.objects[(TRAININGJOBS.plural, NAME)]["status"]
    assert status["phase"] == "Queued"
    assert sorted(status["notifiedEvents"]) == ["event.phase:Queued", "event.trainer-job-created"]
    kube.verbs.clear()
    await operator.reconcile(NS, NAME)  # our own write's event: nothing left to do, no calls
    assert kube.verbs == Counter()
