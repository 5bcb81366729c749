"""secretKeyRef data reaches the trainer without the API server reading Secrets: the operator
copies it into the platform store before it creates the trainer's Job, and deletes the copy with
the job (at once when it sees the deletion, else at the next resync)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from agentcore.api import labels
from agentcore.controllers.common.config import OperatorConfig
from agentcore.controllers.trainingjob.reconciler import TrainingJobReconciler
from agentcore.kube.client import JOBS, SECRETS
from agentcore.kube.client import TRAININGJOB_RESOURCE as TRAININGJOBS
from agentcore.storage.objectstore import LocalObjectStore
from agentcore.storage.staged import staged_key
from tests.unit.controllers.trainingjob.test_events_crash import NAME, NOW, NS, UID, FakeKube, watch, world

QUERIES = [{"query": f"secret q{i}", "expected_outcome": {"answer": str(i)}} for i in range(100)]


def secret_world(labelled: bool = True) -> FakeKube:
    kube = world()
    meta: dict = {"name": "data"}
    if labelled:
        meta["labels"] = {labels.USABLE_BY_TRAININGJOBS: labels.USABLE_VALUE}
    kube.objects[(SECRETS.plural, "data")] = {
        "metadata": meta,
        "data": {"q.json": base64.b64encode(json.dumps(QUERIES).encode()).decode()},
    }
    spec = kube.objects[(TRAININGJOBS.plural, NAME)]["spec"]
    spec["trainingData"] = {"secretKeyRef": {"name": "data", "key": "q.json"}}
    return kube


def operator(kube: FakeKube, store: LocalObjectStore | None) -> TrainingJobReconciler:
    return TrainingJobReconciler(kube, OperatorConfig(), clock=lambda: NOW, store=store)  # type: ignore[arg-type]


async def test_the_secret_data_is_staged_before_the_trainer_job_exists(tmp_path: Path) -> None:
    kube, store = secret_world(), LocalObjectStore(tmp_path)
    created_with: list[bool] = []
    create = kube.create

    async def spy(res, body, namespace=None, **kw):  # type: ignore[no-untyped-def]
        if res is JOBS:
            created_with.append(bool(store.list(staged_key(NS, UID, "training"))))
        return await create(res, body, namespace, **kw)

    kube.create = spy  # type: ignore[method-assign]
    reconciler = operator(kube, store)
    watch(kube, reconciler)
    await reconciler.reconcile(NS, NAME)
    assert created_with == [True]
    assert json.loads(store.get_bytes(staged_key(NS, UID, "training"))) == QUERIES
    assert kube.objects[(TRAININGJOBS.plural, NAME)]["status"]["phase"] == "Queued"


async def test_without_an_object_store_the_job_fails_naming_the_field() -> None:
    kube = secret_world()
    reconciler = operator(kube, None)
    watch(kube, reconciler)
    await reconciler.reconcile(NS, NAME)
    status = kube.objects[(TRAININGJOBS.plural, NAME)]["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "ValidationFailed")
    assert "trainingData.secretKeyRef" in status["message"] and "AGENTCORE_OBJECT_STORE" in status["message"]
    assert (JOBS.plural, f"{NAME}-trainer") not in kube.objects


async def test_an_unlabelled_secret_is_never_copied(tmp_path: Path) -> None:
    kube, store = secret_world(labelled=False), LocalObjectStore(tmp_path)
    reconciler = operator(kube, store)
    watch(kube, reconciler)
    await reconciler.reconcile(NS, NAME)
    assert kube.objects[(TRAININGJOBS.plural, NAME)]["status"]["reason"] == "ValidationFailed"
    assert store.list("") == []


async def test_the_copy_goes_with_the_job(tmp_path: Path) -> None:
    kube, store = secret_world(), LocalObjectStore(tmp_path)
    reconciler = operator(kube, store)
    watch(kube, reconciler)
    await reconciler.reconcile(NS, NAME)
    await reconciler.staging.drop(NS, UID)  # the leader saw the deletion
    assert store.list("") == []


async def test_the_resync_deletes_copies_of_jobs_deleted_unseen(tmp_path: Path) -> None:
    kube, store = secret_world(), LocalObjectStore(tmp_path)
    store.put_bytes(staged_key(NS, "0000-gone", "training"), b"[]")
    store.put_bytes(staged_key("other", "1111-gone", "evaluation"), b"[]")
    store.put_bytes("datasets/ns/upload.json", b"[]")  # not a staged copy: never touched
    reconciler = operator(kube, store)
    await reconciler.resync()
    assert store.list("") == ["datasets/ns/upload.json", staged_key(NS, UID, "training")]


class UnlistableStore(LocalObjectStore):
    def list(self, prefix: str) -> list[str]:
        raise OSError("object store unreachable")


async def test_an_unreachable_store_does_not_stop_the_resync(tmp_path: Path) -> None:
    # The sweep is housekeeping: the resync must still reconcile every job (here: create its Job).
    kube = world()  # ConfigMap data: nothing to stage
    reconciler = operator(kube, UnlistableStore(tmp_path))
    await reconciler.resync()
    assert (JOBS.plural, f"{NAME}-trainer") in kube.objects
