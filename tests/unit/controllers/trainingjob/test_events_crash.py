"""Events survive an operator killed at any point: a fake apiserver that dies at a chosen call,
then a fresh reconciler (a restarted operator) carries on; every Event exists exactly once."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections import Counter
from typing import Any

from agentcore.controllers.common.config import OperatorConfig
from agentcore.controllers.trainingjob.reconciler import TrainingJobReconciler
from agentcore.kube.client import CONFIGMAPS, EVENTS, JOBS, ApiError, Resource
from agentcore.kube.client import TRAININGJOB_RESOURCE as TRAININGJOBS
from tests.conftest import merge_patch

NS, NAME, UID = "ns", "tj", "0b6f6c1e-8a3e-4a59-9d0f-3f0f5b7a1c01"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Crash(Exception):
    """The operator process dies here."""


class FakeKube:
    """Objects by (plural, name); raises Crash at call number `crash_at` (once)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls = 0
        self.crash_at: int | None = None
        self.generated = 0

    def _tick(self) -> None:
        self.calls += 1
        if self.calls == self.crash_at:
            raise Crash(f"killed at call {self.calls}")

    async def get(self, res: Resource, name: str, namespace: str | None = None, sub: str | None = None):
        self._tick()
        if (res.plural, name) not in self.objects:
            raise ApiError(404, {"reason": "NotFound"})
        return copy.deepcopy(self.objects[(res.plural, name)])

    async def create(self, res: Resource, body: dict, namespace: str | None = None, **_: Any):
        self._tick()
        body = copy.deepcopy(body)
        if "name" not in body["metadata"]:
            self.generated += 1
            body["metadata"]["name"] = f"{body['metadata']['generateName']}{self.generated}"
        key = (res.plural, body["metadata"]["name"])
        if key in self.objects:
            raise ApiError(409, {"reason": "AlreadyExists"})
        self.objects[key] = body
        return copy.deepcopy(body)

    async def patch(self, res: Resource, name: str, body: dict, namespace: str | None = None, **_: Any):
        self._tick()
        key = (res.plural, name)
        self.objects[key] = merge_patch(self.objects[key], body)
        return copy.deepcopy(self.objects[key])

    async def list(self, res: Resource, namespace: str | None = None, **_: Any):
        self._tick()
        items = [copy.deepcopy(o) for (plural, _), o in self.objects.items() if plural == res.plural]
        return {"items": items}

    def events(self) -> Counter[str]:
        return Counter(o["reason"] for (plural, _), o in self.objects.items() if plural == EVENTS.plural)


def world() -> FakeKube:
    kube = FakeKube()
    queries = [{"query": f"q{i}", "expected_outcome": {"answer": str(i)}} for i in range(100)]
    kube.objects[(CONFIGMAPS.plural, "data")] = {
        "metadata": {"name": "data"},
        "data": {"q.json": json.dumps(queries)},
    }
    kube.objects[(TRAININGJOBS.plural, NAME)] = {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": NAME, "namespace": NS, "uid": UID, "generation": 1},
        "spec": {
            "agentId": "a",
            "config": {"nIterations": 5},
            "trainingData": {"configMapKeyRef": {"name": "data", "key": "q.json"}},
        },
    }
    return kube


def pod_ready(kube: FakeKube) -> None:
    kube.objects[(JOBS.plural, f"{NAME}-trainer")]["status"] = {"active": 1, "ready": 1}


def trainer_done(kube: FakeKube) -> None:
    tj = kube.objects[(TRAININGJOBS.plural, NAME)]
    tj["status"] = merge_patch(tj.get("status"), {"currentIteration": 5, "trainer": {"state": "Completed"}})
    job = kube.objects[(JOBS.plural, f"{NAME}-trainer")]
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}


def nothing(kube: FakeKube) -> None:
    """A resync with nothing new."""


STEPS = (nothing, pod_ready, trainer_done, nothing)
EXPECTED = Counter(
    {
        "TrainerJobCreated": 1,
        "PhaseQueued": 1,
        "PhaseRunning": 1,
        "Started": 1,
        "PhaseCompleted": 1,
        "Completed": 1,
    }
)


def reconciler(kube: FakeKube) -> TrainingJobReconciler:
    return TrainingJobReconciler(kube, OperatorConfig(), clock=lambda: NOW)  # type: ignore[arg-type]


def watch(kube: FakeKube, operator: TrainingJobReconciler) -> None:
    """What kopf's watches hand the reconciler: the objects as the apiserver now holds them."""
    operator.observe_trainingjob(copy.deepcopy(kube.objects[(TRAININGJOBS.plural, NAME)]))
    job = kube.objects.get((JOBS.plural, f"{NAME}-trainer"))
    if job is not None:
        operator.observe_job(copy.deepcopy(job), NAME)


async def run(kube: FakeKube) -> None:
    operator = reconciler(kube)
    for step in STEPS:
        step(kube)
        watch(kube, operator)
        try:
            await operator.reconcile(NS, NAME)
        except Crash:
            operator = reconciler(kube)  # restarted: nothing survives but what the apiserver holds
            await operator.reconcile(NS, NAME)


async def test_every_event_once_without_a_crash():
    kube = world()
    await run(kube)
    assert kube.events() == EXPECTED
    status = kube.objects[(TRAININGJOBS.plural, NAME)]["status"]
    assert status["phase"] == "Completed"


async def count_calls() -> int:
    kube = world()
    await run(kube)
    return kube.calls


async def test_every_event_once_whatever_call_the_operator_dies_at():
    calls = await count_calls()
    assert calls >= 10  # the run makes real calls: each is a crash point below
    for crash_at in range(1, calls + 1):
        kube = world()
        kube.crash_at = crash_at
        await run(kube)
        assert kube.events() == EXPECTED, f"crash at call {crash_at} of {calls}"


def _finished(phase: str, reason: str) -> float:
    from prometheus_client import REGISTRY

    labels = {"phase": phase, "reason": reason}
    return REGISTRY.get_sample_value("agentcore_trainingjobs_finished_total", labels) or 0.0


async def test_a_completed_job_is_counted_once_with_its_new_phase():
    before = _finished("Completed", "TrainingComplete")
    await run(world())
    # counted when PhaseCompleted is posted, with the phase being written (not the one read)
    assert _finished("Completed", "TrainingComplete") - before == 1
    assert _finished("Running", "Running") == 0


async def test_resync_reports_the_age_of_the_oldest_queued_job():
    from prometheus_client import REGISTRY

    kube = world()
    created = NOW - dt.timedelta(seconds=90)
    kube.objects[(TRAININGJOBS.plural, NAME)]["metadata"]["creationTimestamp"] = created.isoformat()
    await reconciler(kube).resync()
    assert REGISTRY.get_sample_value("agentcore_trainingjob_oldest_queued_seconds") == 90
    assert REGISTRY.get_sample_value("agentcore_trainingjobs", {"phase": "Queued"}) == 1
