"""The JSON-RPC API server over a real kube-apiserver, PostgreSQL and S3 (MinIO), started in-process
on a real socket. No operator runs here: the tests write TrainingJob status themselves, the way the
operator and the trainer would."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from agentcore.auth.tokens import PERMISSIONS, issue_token
from agentcore.datasources import DataPolicy, DataSourceError, load_queries
from agentcore.devenv.procs import ManagedProcess, free_port
from agentcore.kube import config as kube_config
from agentcore.kube.client import KubeClient
from agentcore.server.app import create_app
from agentcore.server.jsonrpc import errors
from agentcore.server.jsonrpc.jobs import (
    ANNOTATION_CREATED_BY,
    LABEL_AGENT_ID,
    LABEL_MANAGED_BY,
    TRAININGJOBS_RESOURCE,
)
from agentcore.server.jsonrpc.models import (
    CancelResult,
    EvaluateResult,
    ExportTrajectoriesResult,
    JobStatusResult,
    StartGrpoResult,
)
from agentcore.server.ratelimit import SPEC_LIMITS, RateLimit
from agentcore.server.settings import Settings
from agentcore.storage.db import make_engine, session_factory
from agentcore.storage.migrate import upgrade
from agentcore.storage.objectstore import S3ObjectStore, open_store
from agentcore.storage.trajectories import TrajectoryRepository
from agentcore_sdk import AsyncTrainingClient
from tests.conftest import get_json
from tests.unit.server.jsonrpc.helpers import SPEC_START, SPEC_STATUS, queries, trajectory_rows

pytestmark = pytest.mark.integration

SECRET = "integration-secret-0123456789abcdef012345"
AGENTCORE = str(Path(sys.executable).parent / "agentcore")


class FixedEvaluator:
    """Stands in for the trainer's evaluation backend (wired in later)."""

    async def evaluate(self, job: dict[str, Any], checkpoint_id: str | None, queries: Any) -> dict[str, Any]:
        return {
            "checkpoint_id": checkpoint_id,
            "metrics": {"success_rate": 0.85, "avg_reward": 0.72, "avg_steps": 8.5, "tool_accuracy": 0.9},
            "baseline_comparison": {
                "success_rate_improvement": 0.15,
                "avg_reward_improvement": 0.22,
                "p_value": 0.001,
                "statistically_significant": True,
            },
            "queries_evaluated": len(job["spec"]["evaluationData"]["inline"]),
            "evaluation_duration_ms": 45000,
        }


class Server:
    def __init__(self, http: TestClient[Any, Any], kube: KubeClient, repo: TrajectoryRepository, bucket: str):
        self.http, self.kube, self.repo, self.bucket = http, kube, repo, bucket

    @property
    def url(self) -> str:
        return str(self.http.make_url("/")).rstrip("/")

    async def rpc(self, body: Any, tok: str) -> tuple[int, Any]:
        resp = await self.http.post("/api/v1/jsonrpc", json=body, headers={"Authorization": f"Bearer {tok}"})
        return resp.status, (await resp.json() if resp.status != 204 else None)

    async def call(self, method: str, params: dict[str, Any], tok: str) -> dict[str, Any]:
        _, reply = await self.rpc({"jsonrpc": "2.0", "method": method, "params": params, "id": "t"}, tok)
        return dict(reply)

    async def result(self, method: str, params: dict[str, Any], tok: str) -> Any:
        reply = await self.call(method, params, tok)
        assert "result" in reply, reply
        return reply["result"]

    async def set_status(self, ns: str, name: str, status: dict[str, Any]) -> None:
        """What the operator and the trainer write (status subresource, merge patch)."""
        await self.kube.patch(TRAININGJOBS_RESOURCE, name, {"status": status}, ns, sub="status")


@pytest.fixture(scope="module")
async def server(crds_installed: Any, postgres: Any, s3: Any) -> AsyncIterator[Server]:
    bucket = f"api-{uuid.uuid4().hex[:8]}"
    store = S3ObjectStore(bucket, "agentcore", client=s3.client())
    await asyncio.to_thread(store.ensure_bucket)
    engine = make_engine(postgres.dsn)
    await upgrade(engine)
    repo = TrajectoryRepository(session_factory(engine))
    settings = Settings(
        kubeconfig=str(crds_installed.kubeconfig),
        jwt_secret=SECRET,
        cancel_wait_seconds=15,
        rate_limits={name: RateLimit(10_000) for name in SPEC_LIMITS},
    )
    app = create_app(settings, repo=repo, object_store=store, evaluator=FixedEvaluator())
    kube = KubeClient(kube_config.load(crds_installed.kubeconfig))
    async with TestClient(TestServer(app)) as http:
        yield Server(http, kube, repo, bucket)
    await kube.close()
    await engine.dispose()


def tok(namespace: str, permissions: tuple[str, ...] = PERMISSIONS, sub: str = "alice") -> str:
    return issue_token(SECRET, sub, permissions, [namespace])


SPEC_STATUS_WITH_CHECKPOINT = {
    **SPEC_STATUS,
    "checkpoints": [
        {"id": "abc-123-def", "iteration": 150, "uri": "s3://b/ckpt/150", "createdAt": "2025-10-17T11:00:00Z"}
    ],
}


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await check()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.1)


async def test_every_spec_example_over_http(server: Server, namespace: str, control_plane: Any) -> None:
    token = tok(namespace)
    # training.start_grpo
    started = await server.result("training.start_grpo", SPEC_START, token)
    StartGrpoResult.model_validate(started)
    assert started["status"] == "queued" and started["total_iterations"] == 500
    obj = await asyncio.to_thread(get_json, control_plane, "-n", namespace, "get", "tj", started["name"])
    assert obj["metadata"]["uid"] == started["job_id"]
    assert obj["metadata"]["labels"][LABEL_AGENT_ID] == "code-generator-v2"
    assert obj["metadata"]["labels"][LABEL_MANAGED_BY] == "agentcore-api"
    assert obj["metadata"]["annotations"][ANNOTATION_CREATED_BY] == "alice"
    assert len(obj["spec"]["trainingData"]["inline"]) == 100 and obj["spec"]["config"]["nIterations"] == 500

    # training.get_status, once the trainer reported progress
    job_id, name = started["job_id"], started["name"]
    await server.set_status(namespace, name, SPEC_STATUS_WITH_CHECKPOINT)

    async def running() -> dict[str, Any] | None:
        status = await server.result("training.get_status", {"job_id": job_id}, token)
        return status if status["status"] == "running" else None

    status = await eventually(running)
    JobStatusResult.model_validate(status)
    assert status["progress_percent"] == 30.0 and status["cost_usd"] == "12.50"
    assert status["metrics"] == {
        "train_loss": 0.234,
        "validation_accuracy": 0.82,
        "avg_reward": 0.65,
        "trajectories_generated": 1200,
    }

    # training.evaluate (the backend is a stand-in here)
    evaluation = await server.result(
        "training.evaluate", {"job_id": job_id, "checkpoint_id": "abc-123-def"}, token
    )
    EvaluateResult.model_validate(evaluation)
    assert evaluation["queries_evaluated"] == 1  # the evaluator saw the resource's evaluation data

    # training.export_trajectories
    await server.repo.add_batch(trajectory_rows(job_id, 40, namespace))
    params = {"job_id": job_id, "success_only": True, "min_reward": 0.5, "limit": 100, "offset": 0}
    exported = await server.result("training.export_trajectories", params, token)
    ExportTrajectoriesResult.model_validate(exported)
    assert exported["returned_count"] == exported["total_count"] > 0 and not exported["has_more"]

    # batch of two get_status calls
    other = await server.result("training.start_grpo", {**SPEC_START, "evaluation_data": None}, token)
    batch = [
        {"jsonrpc": "2.0", "method": "training.get_status", "params": {"job_id": job_id}, "id": "1"},
        {"jsonrpc": "2.0", "method": "training.get_status", "params": {"job_id": other["job_id"]}, "id": "2"},
    ]
    http_status, replies = await server.rpc(batch, token)
    assert http_status == 200 and [r["id"] for r in replies] == ["1", "2"]
    assert [r["result"]["status"] for r in replies] == ["running", "queued"]

    # training.cancel: the "operator" (this test) stops the job once spec.cancel is set
    async def operator() -> None:
        async def requested() -> bool:
            job = await server.kube.get(TRAININGJOBS_RESOURCE, name, namespace)
            return bool((job["spec"].get("cancel") or {}).get("requested"))

        await eventually(requested)
        cancellation = {
            "cancelledAt": "2025-10-17T11:00:00Z",
            "iterationsCompleted": 150,
            "checkpointSaved": True,
            "checkpointId": "abc-123-def",
        }
        await server.set_status(namespace, name, {"phase": "Cancelled", "cancellation": cancellation})

    task = asyncio.create_task(operator())
    cancelled = await server.result(
        "training.cancel", {"job_id": job_id, "reason": "Budget exceeded manually"}, token
    )
    await task
    CancelResult.model_validate(cancelled)
    assert cancelled == {
        "job_id": job_id,
        "status": "cancelled",
        "cancelled_at": "2025-10-17T11:00:00Z",
        "iterations_completed": 150,
        "checkpoint_saved": True,
        "checkpoint_id": "abc-123-def",
        "reason": "Budget exceeded manually",
    }
    obj = await asyncio.to_thread(get_json, control_plane, "-n", namespace, "get", "tj", name)
    assert obj["spec"]["cancel"] == {"requested": True, "reason": "Budget exceeded manually"}
    again = await server.call("training.cancel", {"job_id": job_id}, token)
    assert again["error"]["code"] == errors.CANNOT_CANCEL


async def test_validation_errors_over_http(server: Server, namespace: str) -> None:
    token = tok(namespace)
    bad_config = await server.call(
        "training.start_grpo", {**SPEC_START, "config": {"n_iterations": 0}}, token
    )
    assert bad_config["error"] == {
        "code": errors.INVALID_REQUEST,
        "message": "Invalid training configuration",
        "data": {"field": "n_iterations", "error": "Must be between 1 and 10000"},
    }
    few = await server.call("training.start_grpo", {**SPEC_START, "training_data": queries(5)}, token)
    assert few["error"]["code"] == errors.VALIDATION_FAILED
    broke = await server.call(
        "training.start_grpo", {**SPEC_START, "config": {"max_budget_usd": "0.01"}}, token
    )
    assert broke["error"]["code"] == errors.BUDGET_EXCEEDED
    assert (await server.call("training.get_status", {"job_id": "job-1"}, token))["error"]["code"] == (
        errors.INVALID_PARAMS
    )


async def test_jobs_made_with_kubectl_are_served(server: Server, namespace: str, control_plane: Any) -> None:
    manifest = {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "from-kubectl", "namespace": namespace},
        "spec": {
            "agentId": "gitops-agent",
            "config": {"nIterations": 3},
            "trainingData": {"inline": _camel(queries(100))},
        },
    }
    await asyncio.to_thread(control_plane.kubectl, "apply", "-f", "-", input=yaml.safe_dump(manifest))
    uid = (await asyncio.to_thread(get_json, control_plane, "-n", namespace, "get", "tj", "from-kubectl"))[
        "metadata"
    ]["uid"]

    async def served() -> Any:
        return (await server.call("training.get_status", {"job_id": uid}, tok(namespace))).get("result")

    status = await eventually(served)
    assert (
        status["agent_id"] == "gitops-agent"
        and status["status"] == "queued"
        and status["total_iterations"] == 3
    )
    listed = await server.result("training.list_jobs", {"agent_id": "gitops-agent"}, tok(namespace))
    assert [j["job_id"] for j in listed["jobs"]] == [uid]


def _camel(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"query": q["query"], "expectedOutcome": q["expected_outcome"]} for q in items]


async def test_large_datasets_go_to_s3_where_the_trainer_reads_them(
    server: Server, namespace: str, s3: Any, control_plane: Any
) -> None:
    data = queries(150, size=2000)  # ~300 KB of JSON: over the 256 KiB inline limit
    started = await server.result(
        "training.start_grpo", {**SPEC_START, "training_data": data}, tok(namespace)
    )
    obj = await asyncio.to_thread(get_json, control_plane, "-n", namespace, "get", "tj", started["name"])
    uri = obj["spec"]["trainingData"]["uri"]
    assert uri == f"s3://{server.bucket}/agentcore/datasets/{namespace}/{started['name']}/training.json"
    assert "inline" in obj["spec"]["evaluationData"]
    creds = s3.credentials

    def opener(base: str) -> Any:
        return open_store(
            base, endpoint_url=creds.endpoint_url, access_key=creds.access_key, secret_key=creds.secret_key
        )

    policy = DataPolicy(store=f"s3://{server.bucket}/agentcore")  # the trainer's AGENTCORE_OBJECT_STORE
    loaded = await load_queries(obj["spec"]["trainingData"], namespace, server.kube, opener, policy)
    assert loaded == data  # exactly what the trainer will train on
    with pytest.raises(DataSourceError, match="not allowed"):  # another tenant reads none of it
        await load_queries(obj["spec"]["trainingData"], "other-tenant", server.kube, opener, policy)


async def test_tenants_do_not_see_each_other(server: Server, namespace: str, control_plane: Any) -> None:
    other_ns = f"t-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(control_plane.kubectl, "create", "namespace", other_ns)
    try:
        mine = await server.result("training.start_grpo", SPEC_START, tok(namespace))
        theirs = await server.result("training.start_grpo", SPEC_START, tok(other_ns, sub="bob"))
        assert theirs["namespace"] == other_ns
        nobody = await server.call("training.get_status", {"job_id": str(uuid.uuid4())}, tok(namespace))
        for method in (
            "training.get_status",
            "training.cancel",
            "training.export_trajectories",
            "training.evaluate",
        ):
            reply = await server.call(method, {"job_id": theirs["job_id"]}, tok(namespace))
            assert reply["error"] == nobody["error"], method
        listed = await server.result("training.list_jobs", {}, tok(namespace))
        assert [j["job_id"] for j in listed["jobs"]] == [mine["job_id"]]
        forbidden = await server.call(
            "training.start_grpo", {**SPEC_START, "namespace": other_ns}, tok(namespace)
        )
        assert forbidden["error"]["code"] == errors.FORBIDDEN
        obj = await asyncio.to_thread(get_json, control_plane, "-n", other_ns, "get", "tj", theirs["name"])
        assert "cancel" not in obj["spec"]
    finally:
        await asyncio.to_thread(control_plane.kubectl, "delete", "namespace", other_ns, "--wait=false")


async def test_export_pages_through_everything_once_on_postgres(server: Server, namespace: str) -> None:
    token = tok(namespace)
    job = await server.result("training.start_grpo", SPEC_START, token)
    inserted = trajectory_rows(job["job_id"], 2500, namespace, per_timestamp=16)
    for start in range(0, len(inserted), 1000):  # asyncpg allows 32,767 bind parameters per statement
        await server.repo.add_batch(inserted[start : start + 1000])
    everything = {r["id"] for r in inserted}

    async with AsyncTrainingClient(server.url, api_key=token) as client:
        by_cursor = [t.trajectory_id async for t in client.iter_trajectories(job["job_id"], page_size=1000)]
        by_offset: list[str] = []
        for offset in range(0, 2500, 700):
            page = await client.export_trajectories(job["job_id"], limit=700, offset=offset)
            assert page.total_count == 2500 and page.has_more == (offset + 700 < 2500)
            by_offset += [t.trajectory_id for t in page.trajectories]
        successful = [
            t async for t in client.iter_trajectories(job["job_id"], success_only=True, page_size=333)
        ]
        too_many = await client.call(
            "training.export_trajectories", {"job_id": job["job_id"], "limit": 10_000}
        )
    assert len(by_cursor) == 2500 and set(by_cursor) == everything
    assert by_offset == by_cursor  # one stable order
    assert len(successful) == 834 and all(t.success for t in successful)  # every third
    assert too_many["returned_count"] == 2500
    over = await server.call(
        "training.export_trajectories", {"job_id": job["job_id"], "limit": 10_001}, token
    )
    assert over["error"]["code"] == errors.EXPORT_LIMIT_EXCEEDED


async def test_readiness(server: Server) -> None:
    resp = await server.http.get("/readyz")
    assert resp.status == 200, await resp.text()


async def test_agentcore_api_command(
    crds_installed: Any, postgres: Any, tmp_path: Path, namespace: str
) -> None:
    """`agentcore api` as an operator would run it: flags, a secret file, a real port."""
    port = free_port()
    secret_file = tmp_path / "jwt-secret"
    secret_file.write_text(SECRET + "\n")
    argv = [AGENTCORE, "api", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--kubeconfig", str(crds_installed.kubeconfig), "--database-url", postgres.dsn]
    argv += ["--jwt-secret-file", str(secret_file), "--rate-limit", "training.list_jobs=2/60"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTCORE_")}
    proc = ManagedProcess("api", argv, tmp_path / "api.log", env=env)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:

            async def ready() -> bool:
                try:
                    async with http.get("/readyz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(ready, 30)
            body = {"jsonrpc": "2.0", "method": "training.list_jobs", "id": 1}
            headers = {"Authorization": f"Bearer {tok(namespace)}"}
            statuses = []
            for _ in range(3):
                async with http.post("/api/v1/jsonrpc", json=body, headers=headers) as resp:
                    statuses.append(resp.status)
                    assert resp.headers["X-RateLimit-Limit"] == "2"
            assert statuses == [200, 200, 429]
            async with http.post("/api/v1/jsonrpc", json=body) as resp:
                assert resp.status == 401
    finally:
        proc.stop(10)
    log_lines = [
        json.loads(line) for line in (tmp_path / "api.log").read_text().splitlines() if line.startswith("{")
    ]
    access = [line for line in log_lines if line.get("logger") == "agentcore.api.access"]
    assert any(line.get("status") == 429 for line in access)
    assert not any(SECRET in json.dumps(line) for line in log_lines)
