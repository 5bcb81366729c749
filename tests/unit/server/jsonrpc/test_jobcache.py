"""The watch-backed TrainingJob cache: list+watch, resuming, relisting on 410, read-your-writes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from agentcore.kube.client import ApiError
from agentcore.server.jsonrpc.jobcache import JobCache
from agentcore.server.jsonrpc.jobs import CachedJob, CachedTrainingJob, job_name, status_view
from tests.unit.server.jsonrpc.conftest import FakeKube

SPEC = {"agentId": "a", "config": {"nIterations": 10}, "trainingData": {"inline": [{"query": "q"}] * 100}}


@pytest.fixture
async def running() -> AsyncIterator[tuple[FakeKube, JobCache]]:
    kube = FakeKube()
    cache = JobCache(kube)
    task = asyncio.create_task(cache.run())
    assert await cache.wait_synced(2)
    yield kube, cache
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def eventually(check: Callable[[], object], seconds: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_follows_the_watch(running: tuple[FakeKube, JobCache]) -> None:
    kube, cache = running
    uid = kube.add("team-a", "j1", SPEC)
    await eventually(lambda: cache.get(uid))
    kube.set_status(uid, {"phase": "Running", "currentIteration": 2})
    await eventually(lambda: (job := cache.get(uid)) and job.view["current_iteration"] == 2)
    assert [j.uid for j in cache.in_namespaces(["team-a"])] == [uid]
    assert cache.in_namespaces(["team-b"]) == [] and len(cache.in_namespaces(None)) == 1
    kube.delete(uid)
    await eventually(lambda: cache.get(uid) is None)
    assert cache.in_namespaces(["team-a"]) == [] and cache.ready


async def test_relists_when_the_watch_expires(running: tuple[FakeKube, JobCache]) -> None:
    kube, cache = running
    kept = kube.add("team-a", "kept", SPEC)
    gone = kube.add("team-a", "gone", SPEC)
    await eventually(lambda: cache.get(gone))
    lists = kube.calls.count("list")
    # Changes the watch never reports, then a 410: only a fresh list can catch up.
    del kube.objects[("team-a", "gone")]
    kube.objects[("team-a", "kept")]["status"] = {"phase": "Completed"}
    kube.expire_watches()
    await eventually(lambda: cache.get(gone) is None)
    assert cache.get(kept) is not None and cache.get(kept).api_status == "completed"  # type: ignore[union-attr]
    assert kube.calls.count("list") == lists + 1


async def test_list_failures_are_retried() -> None:
    kube = FakeKube()
    kube.fail["list"] = ApiError(500, {"message": "etcd leader changed"})
    cache = JobCache(kube)
    task = asyncio.create_task(cache.run())
    try:
        assert not await cache.wait_synced(0.2) and not cache.ready
        del kube.fail["list"]
        assert await cache.wait_synced(5) and cache.ready
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_read_your_writes_never_resurrects(running: tuple[FakeKube, JobCache]) -> None:
    kube, cache = running
    obj = {"metadata": {"uid": "u-1", "namespace": "team-a", "name": "n"}, "spec": SPEC}
    cache.observe(obj)
    assert cache.get("u-1") is not None
    uid = kube.add("team-a", "x", SPEC)
    await eventually(lambda: cache.get(uid))
    newer = cache.get(uid)
    cache.observe({**kube.find(uid), "status": {"phase": "Failed"}})  # the watch's copy wins
    assert cache.get(uid) is newer
    created = dict(kube.find(uid))
    kube.delete(uid)
    await eventually(lambda: cache.get(uid) is None)
    cache.observe(created)  # a late create response after the deletion
    assert cache.get(uid) is None


async def test_wait_for(running: tuple[FakeKube, JobCache]) -> None:
    kube, cache = running
    uid = kube.add("team-a", "w", SPEC)
    await eventually(lambda: cache.get(uid))
    asyncio.get_running_loop().call_later(0.05, kube.set_status, uid, {"phase": "Cancelled"})
    job = await cache.wait_for(uid, lambda j: j is not None and j.terminal, 5)
    assert job is not None and job.api_status == "cancelled"
    job = await cache.wait_for(uid, lambda j: False, 0.05)  # times out: the job as last seen
    assert job is not None and job.uid == uid


def test_slim_drops_datasets_and_managed_fields() -> None:
    obj = {
        "metadata": {"name": "n", "uid": "u", "namespace": "ns", "managedFields": [{"big": True}]},
        "spec": {**SPEC, "evaluationData": {"inline": []}},
        "status": {"phase": "Running"},
    }
    kept = CachedTrainingJob.model_validate(obj).to_resource()
    assert set(kept["metadata"]) == {"name", "uid", "namespace"}
    assert set(kept["spec"]) == {"agentId", "config"}
    job = CachedJob.from_resource(obj)
    assert job is not None and job.api_status == "running"
    assert job.view == status_view(CachedTrainingJob.model_validate(kept))


def test_no_phase_yet_is_queued() -> None:
    job = CachedJob.from_resource({"metadata": {"uid": "u"}, "spec": SPEC})
    assert job is not None and job.api_status == "queued" and not job.terminal


def test_a_resource_the_models_reject_stays_out_of_the_cache() -> None:
    assert (
        CachedJob.from_resource({"metadata": {"uid": "u"}, "spec": {}, "status": {"phase": "Exploded"}})
        is None
    )


@pytest.mark.parametrize(
    ("agent_id", "prefix"),
    [("code-generator-v2", "code-generator-v2"), ("A_B.C", "a-b-c"), ("---", "job"), ("x" * 63, "x" * 40)],
)
def test_job_names(agent_id: str, prefix: str) -> None:
    name = job_name(agent_id)
    assert name.startswith(prefix + "-") and len(name) == len(prefix) + 9 and len(name) <= 63
