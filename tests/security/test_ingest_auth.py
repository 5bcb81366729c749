"""The ingestion endpoint's authentication and scoping, against the real kube-apiserver (TokenRequest,
TokenReview), PostgreSQL and S3: a trainer's projected token reaches its own job's data only.

Two TrainingJobs A and B, each with the service account its trainer would run as (controlled by
the job, as the operator creates it); tokens are requested from the apiserver like a kubelet does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from agentcore.api.ingest import DEFAULT_AUDIENCE, PREFIX
from agentcore.auth.tokens import issue_token
from agentcore.kube import config as kube_config
from agentcore.kube.client import NAMESPACES, SERVICEACCOUNTS, TRAININGJOB_RESOURCE, KubeClient
from agentcore.server.app import create_app
from agentcore.server.settings import Settings
from agentcore.storage.checkpoints import checkpoint_prefix
from agentcore.storage.db import make_engine, session_factory
from agentcore.storage.migrate import upgrade
from agentcore.storage.objectstore import S3ObjectStore
from agentcore.storage.staged import staged_key
from agentcore.storage.trajectories import TrajectoryRepository

pytestmark = pytest.mark.integration
SECRET = "x" * 40
MAX_BATCH = 64 << 10
MAX_OBJECT = 256 << 10


@dataclass
class Job:
    name: str
    uid: str
    token: str

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}


@dataclass
class Env:
    http: TestClient[Any, Any]
    kube: KubeClient
    ns: str
    a: Job
    b: Job
    store: S3ObjectStore


def _job(name: str, query: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    inline = [{"query": f"{query} {i}", "expectedOutcome": {"answer": "x"}} for i in range(100)]
    return {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "agentId": "agent",
            "config": {"nIterations": 1},
            "trainingData": data or {"inline": inline},
        },
    }


async def _token(kube: KubeClient, ns: str, sa: str, audience: str | None) -> str:
    spec: dict[str, Any] = {"expirationSeconds": 3600}
    if audience:
        spec["audiences"] = [audience]
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    return str((await kube.create(SERVICEACCOUNTS, body, ns, name=sa, sub="token"))["status"]["token"])


async def _start_job(
    kube: KubeClient, ns: str, name: str, query: str, data: dict[str, Any] | None = None
) -> Job:
    tj = await kube.create(TRAININGJOB_RESOURCE, _job(name, query, data), ns)
    owner = {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "TrainingJob",
        "name": name,
        "uid": tj["metadata"]["uid"],
        "controller": True,
    }
    sa = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": f"{name}-trainer", "ownerReferences": [owner]},
    }
    await kube.create(SERVICEACCOUNTS, sa, ns)
    return Job(name, tj["metadata"]["uid"], await _token(kube, ns, f"{name}-trainer", DEFAULT_AUDIENCE))


@pytest.fixture(scope="module")
async def env(crds_installed: Any, postgres: Any, s3: Any) -> AsyncIterator[Env]:
    store = S3ObjectStore(f"ingest-{uuid.uuid4().hex[:8]}", "agentcore", client=s3.client())
    await asyncio.to_thread(store.ensure_bucket)
    engine = make_engine(postgres.dsn)
    await upgrade(engine)
    settings = Settings(
        kubeconfig=str(crds_installed.kubeconfig),
        jwt_secret=SECRET,
        ingest_max_batch_bytes=MAX_BATCH,
        ingest_max_object_bytes=MAX_OBJECT,
        ingest_max_inflight=1,
    )
    app = create_app(settings, repo=TrajectoryRepository(session_factory(engine)), object_store=store)
    kube = KubeClient(kube_config.load(crds_installed.kubeconfig))
    ns = f"ingest-{uuid.uuid4().hex[:6]}"
    await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    a, b = await _start_job(kube, ns, "job-a", "alpha"), await _start_job(kube, ns, "job-b", "beta")
    async with TestClient(TestServer(app)) as http:
        yield Env(http, kube, ns, a, b, store)
    await kube.delete(NAMESPACES, ns)
    await kube.close()
    await engine.dispose()


def _row(job: Job, ns: str, sample: int) -> dict[str, Any]:
    return {
        "id": f"{job.uid[:8]}-{sample}", "job_id": job.uid, "job_name": job.name, "namespace": ns,
        "agent_id": "agent", "iteration": 1, "group_index": 0, "sample_index": sample, "query": "q",
        "steps": [], "reward": 1.0, "normalized_reward": 0.0, "advantage": 0.0, "success": True,
        "execution_time_ms": 1, "created_at": dt.datetime.now(dt.UTC).isoformat(),
    }  # fmt: skip


async def test_own_dataset_only(env: Env) -> None:
    resp = await env.http.get(f"{PREFIX}/datasets/training", headers=env.a.auth())
    assert resp.status == 200
    queries = (await resp.json())["queries"]
    assert len(queries) == 100 and all(q["query"].startswith("alpha") for q in queries)
    resp = await env.http.get(f"{PREFIX}/datasets/training", headers=env.b.auth())
    assert all(q["query"].startswith("beta") for q in (await resp.json())["queries"])


async def test_wrong_audience_default_token_and_platform_jwt_are_401(env: Env) -> None:
    default = await _token(env.kube, env.ns, "job-a-trainer", None)
    foreign = await _token(env.kube, env.ns, "job-a-trainer", "some-other-service")
    platform = issue_token(SECRET, "admin", namespaces=("*",), roles=("admin",))
    for token in (default, foreign, platform, "not-a-token"):
        resp = await env.http.get(f"{PREFIX}/datasets/training", headers=env.a.auth(token))
        assert resp.status == 401, token[:20]
    assert (await env.http.get(f"{PREFIX}/datasets/training")).status == 401


async def test_token_of_a_service_account_without_a_job_is_403(env: Env) -> None:
    token = await _token(env.kube, env.ns, "default", DEFAULT_AUDIENCE)
    resp = await env.http.get(f"{PREFIX}/datasets/training", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 403


async def test_trajectories_only_for_the_callers_job(env: Env) -> None:
    ok = await env.http.post(
        f"{PREFIX}/trajectories", json={"rows": [_row(env.a, env.ns, 0)]}, headers=env.a.auth()
    )
    assert ok.status == 200 and (await ok.json())["inserted"] == 1
    again = await env.http.post(
        f"{PREFIX}/trajectories", json={"rows": [_row(env.a, env.ns, 0)]}, headers=env.a.auth()
    )
    assert (await again.json())["inserted"] == 0  # idempotent ids
    forged = await env.http.post(
        f"{PREFIX}/trajectories",
        json={"rows": [_row(env.a, env.ns, 1), _row(env.b, env.ns, 1)]},
        headers=env.a.auth(),
    )
    assert forged.status == 403 and "rows[1].job_id" in await forged.text()


async def test_oversized_trajectory_batch_is_413(env: Env) -> None:
    row = {**_row(env.a, env.ns, 2), "query": "x" * MAX_BATCH}
    resp = await env.http.post(f"{PREFIX}/trajectories", json={"rows": [row]}, headers=env.a.auth())
    assert resp.status == 413


async def test_objects_only_under_the_callers_prefix(env: Env) -> None:
    own = checkpoint_prefix(env.ns, "job-a").strip("/")
    other = checkpoint_prefix(env.ns, "job-b").strip("/")
    put = await env.http.put(f"{PREFIX}/objects/{own}/ckpt.npz", data=b"state", headers=env.a.auth())
    assert put.status == 200 and (await put.json())["uri"].startswith("s3://")
    got = await env.http.get(f"{PREFIX}/objects/{own}/ckpt.npz", headers=env.a.auth())
    assert got.status == 200 and await got.read() == b"state"
    listed = await env.http.get(f"{PREFIX}/objects", params={"prefix": f"{own}/"}, headers=env.a.auth())
    assert (await listed.json())["keys"] == [f"{own}/ckpt.npz"]
    for method in ("GET", "PUT", "DELETE"):
        resp = await env.http.request(
            method, f"{PREFIX}/objects/{own}/ckpt.npz", headers=env.b.auth(), data=b"x"
        )
        assert resp.status == 403, method
    assert (
        await env.http.get(f"{PREFIX}/objects", params={"prefix": f"{own}/"}, headers=env.b.auth())
    ).status == 403
    assert (
        await env.http.get(f"{PREFIX}/objects", params={"prefix": ""}, headers=env.a.auth())
    ).status == 403
    for key in (f"{own}/../{other.rsplit('/', 1)[1]}/x", f"{own}/%2E%2E/x", f"/{own}/x", f"{own}//x"):
        url = env.http.make_url(URL(f"{PREFIX}/objects/{key}", encoded=True))
        resp = await env.http.session.put(url, data=b"x", headers=env.a.auth())
        assert resp.status in (403, 404), key
    assert (await env.http.delete(f"{PREFIX}/objects/{own}/ckpt.npz", headers=env.a.auth())).status == 204


async def test_oversized_object_is_413(env: Env) -> None:
    own = checkpoint_prefix(env.ns, "job-a").strip("/")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the server must count
        for _ in range(MAX_OBJECT // 4096 + 2):
            yield b"\0" * 4096

    resp = await env.http.put(f"{PREFIX}/objects/{own}/big.npz", data=chunks(), headers=env.a.auth())
    assert resp.status == 413
    assert (await env.http.get(f"{PREFIX}/objects/{own}/big.npz", headers=env.a.auth())).status == 404


async def test_more_requests_in_flight_than_allowed_is_429(env: Env) -> None:
    own = checkpoint_prefix(env.ns, "job-a").strip("/")
    release = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"part"
        await release.wait()
        yield b"rest"

    upload = asyncio.create_task(
        env.http.put(f"{PREFIX}/objects/{own}/slow.npz", data=slow(), headers=env.a.auth())
    )
    await asyncio.sleep(0.5)
    busy = await env.http.get(f"{PREFIX}/datasets/training", headers=env.a.auth())
    other = await env.http.get(f"{PREFIX}/datasets/training", headers=env.b.auth())  # another job: own bound
    release.set()
    assert (await upload).status == 200
    assert busy.status == 429 and busy.headers["Retry-After"]
    assert other.status == 200


async def test_a_namespace_past_its_trajectory_cap_is_refused_507(
    env: Env, crds_installed: Any, postgres: Any
) -> None:
    """Red team (issue 12): no per-tenant cap on stored trajectories; one tenant's trainer could fill
    the shared database. The cap is the API server's; a refused batch stores nothing."""
    ns = f"cap-{uuid.uuid4().hex[:6]}"
    await env.kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    job = await _start_job(env.kube, ns, "job-c", "gamma")
    engine = make_engine(postgres.dsn)
    repo = TrajectoryRepository(session_factory(engine), max_per_namespace=3)
    settings = Settings(kubeconfig=str(crds_installed.kubeconfig), jwt_secret=SECRET)
    try:
        async with TestClient(TestServer(create_app(settings, repo=repo))) as http:
            ok = await http.post(
                f"{PREFIX}/trajectories",
                json={"rows": [_row(job, ns, i) for i in range(3)]},
                headers=job.auth(),
            )
            assert ok.status == 200 and (await ok.json())["inserted"] == 3
            over = await http.post(
                f"{PREFIX}/trajectories",
                json={"rows": [_row(job, ns, i) for i in range(3, 5)]},
                headers=job.auth(),
            )
            assert over.status == 507
            assert "at most 3 trajectories" in await over.text()
        assert await repo.stored_in(ns) == 3
    finally:
        await engine.dispose()
        await env.kube.delete(NAMESPACES, ns)


async def test_secret_data_is_served_from_the_operators_staged_copy(env: Env) -> None:
    """Issue 12: the chart's API server may not read Secrets, so a secretKeyRef job got 422. The
    endpoint serves the copy the operator staged for this job's uid (no Secret named here exists:
    the API server never reads one), and without a copy it says what is missing."""
    ref = {"secretKeyRef": {"name": "no-such-secret", "key": "q.json"}}
    job = await _start_job(env.kube, env.ns, "job-s", "unused", data=ref)
    resp = await env.http.get(f"{PREFIX}/datasets/training", headers=job.auth())
    assert resp.status == 422 and "no-such-secret" in await resp.text()
    staged = [{"query": f"staged {i}", "expected_outcome": {"answer": "y"}} for i in range(100)]
    key = staged_key(env.ns, job.uid, "training")
    await asyncio.to_thread(env.store.put_bytes, key, json.dumps(staged).encode())
    resp = await env.http.get(f"{PREFIX}/datasets/training", headers=job.auth())
    assert resp.status == 200
    assert [q["query"] for q in (await resp.json())["queries"]] == [q["query"] for q in staged]
    # Another job's token gets its own data, never this copy; nor can a trainer name the key.
    other = await env.http.get(f"{PREFIX}/datasets/training", headers=env.a.auth())
    assert all(q["query"].startswith("alpha") for q in (await other.json())["queries"])
    resp = await env.http.get(f"{PREFIX}/objects/{key}", headers=job.auth())
    assert resp.status == 403
