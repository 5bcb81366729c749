"""Unit-test harness of the API server: the real aiohttp app over an in-memory Kubernetes API
(list/watch with resourceVersions and replay, merge patches), SQLite and a local object store."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agentcore.auth.tokens import PERMISSIONS, issue_token
from agentcore.kube.client import ApiError, Resource
from agentcore.server.app import RPC_PATH, create_app
from agentcore.server.ratelimit import SPEC_LIMITS, RateLimit
from agentcore.server.settings import Settings
from agentcore.storage.db import make_engine, session_factory
from agentcore.storage.migrate import upgrade
from agentcore.storage.objectstore import LocalObjectStore
from agentcore.storage.trajectories import TrajectoryRepository
from tests.conftest import merge_patch
from tests.unit.server.jsonrpc.helpers import queries

SECRET = "unit-test-secret-0123456789abcdef0123456789"
NAMESPACES = ("team-a", "team-b", "default")
BIG_LIMITS = {name: RateLimit(100_000) for name in SPEC_LIMITS}


class FakeKube:
    """Enough of the apiserver for TrainingJobs: resourceVersions, watch replay from a version,
    410 on demand, namespaces that must exist, failure injection per verb."""

    def __init__(self, namespaces: tuple[str, ...] = NAMESPACES) -> None:
        self.namespaces = set(namespaces)
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 100
        self.backlog: list[tuple[int, dict[str, Any]]] = []
        self.watchers: list[asyncio.Queue[dict[str, Any]]] = []
        self.fail: dict[str, Exception] = {}
        self.calls: list[str] = []
        self.clock = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self.closed = False

    def _check(self, verb: str) -> None:
        self.calls.append(verb)
        if verb in self.fail:
            raise self.fail[verb]

    def _emit(self, kind: str, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        event = {"type": kind, "object": copy.deepcopy(obj)}
        self.backlog.append((self.version, event))
        for queue in self.watchers:
            queue.put_nowait(event)

    async def list(self, res: Resource, namespace: str | None = None, **params: Any) -> dict[str, Any]:
        self._check("list")
        items = [copy.deepcopy(o) for (ns, _), o in self.objects.items() if namespace in (None, ns)]
        return {"items": items, "metadata": {"resourceVersion": str(self.version)}}

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
        **params: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        self._check("watch")
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        since = int(resource_version or 0)
        for version, event in self.backlog:  # replay, then live: no await in between
            if version > since:
                queue.put_nowait(event)
        self.watchers.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self.watchers.remove(queue)

    async def get(
        self, res: Resource, name: str, namespace: str | None = None, sub: str | None = None
    ) -> Any:
        self._check("get")
        obj = self.objects.get((namespace or "", name))
        if obj is None:
            raise ApiError(404, {"reason": "NotFound", "message": f"{name} not found"})
        return copy.deepcopy(obj)

    async def create(
        self,
        res: Resource,
        body: dict[str, Any],
        namespace: str | None = None,
        sub: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        self._check("create")
        ns = namespace or ""
        if ns not in self.namespaces:
            raise ApiError(404, {"reason": "NotFound", "details": {"name": ns, "kind": "namespaces"}})
        obj = copy.deepcopy(body)
        meta = obj["metadata"]
        if (ns, meta["name"]) in self.objects:
            raise ApiError(409, {"reason": "AlreadyExists"})
        self.clock += dt.timedelta(seconds=1)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=self.clock.strftime("%Y-%m-%dT%H:%M:%SZ"))
        meta["namespace"] = ns
        self.objects[(ns, meta["name"])] = obj
        self._emit("ADDED", obj)
        return copy.deepcopy(obj)

    async def patch(
        self,
        res: Resource,
        name: str,
        body: dict[str, Any],
        namespace: str | None = None,
        sub: str | None = None,
        content_type: str = "",
    ) -> dict[str, Any]:
        self._check("patch")
        key = (namespace or "", name)
        if key not in self.objects:
            raise ApiError(404, {"reason": "NotFound"})
        self.objects[key] = merge_patch(self.objects[key], body)
        self._emit("MODIFIED", self.objects[key])
        return copy.deepcopy(self.objects[key])

    async def close(self) -> None:
        self.closed = True

    # --- what the operator / trainer would do ------------------------------------------------------

    def find(self, uid: str) -> dict[str, Any]:
        return next(o for o in self.objects.values() if o["metadata"]["uid"] == uid)

    def set_status(self, uid: str, status: dict[str, Any]) -> None:
        obj = self.find(uid)
        obj["status"] = merge_patch(obj.get("status") or {}, status)
        self._emit("MODIFIED", obj)

    def delete(self, uid: str) -> None:
        obj = self.find(uid)
        del self.objects[(obj["metadata"]["namespace"], obj["metadata"]["name"])]
        self._emit("DELETED", obj)

    def add(
        self, namespace: str, name: str, spec: dict[str, Any], status: dict[str, Any] | None = None
    ) -> str:
        """A job created behind the API's back (kubectl); returns its uid."""
        self.clock += dt.timedelta(seconds=1)
        obj: dict[str, Any] = {
            "apiVersion": "training.agentcore.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": self.clock.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "spec": spec,
        }
        if status:
            obj["status"] = status
        self.objects[(namespace, name)] = obj
        self._emit("ADDED", obj)
        return str(obj["metadata"]["uid"])

    def expire_watches(self) -> None:
        """What the apiserver sends when a watch's resourceVersion is compacted away."""
        self.backlog.clear()
        for queue in self.watchers:
            queue.put_nowait(
                {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
            )


class FakeEvaluator:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], str | None, list[dict[str, Any]] | None]] = []
        self.error: Exception | None = None
        self.result: dict[str, Any] = {
            "checkpoint_id": "ckpt-best",
            "metrics": {"success_rate": 0.85, "avg_reward": 0.72, "avg_steps": 8.5, "tool_accuracy": 0.9},
            "baseline_comparison": {
                "success_rate_improvement": 0.15,
                "avg_reward_improvement": 0.22,
                "p_value": 0.001,
                "statistically_significant": True,
            },
            "queries_evaluated": 50,
            "evaluation_duration_ms": 45000,
        }

    async def evaluate(
        self, job: dict[str, Any], checkpoint_id: str | None, queries: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        self.calls.append((job, checkpoint_id, queries))
        if self.error is not None:
            raise self.error
        return dict(self.result, checkpoint_id=checkpoint_id or self.result.get("checkpoint_id"))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def token(
    permissions: tuple[str, ...] = PERMISSIONS,
    namespaces: tuple[str, ...] = ("team-a",),
    sub: str = "alice",
    **kw: Any,
) -> str:
    return issue_token(SECRET, sub, permissions, namespaces, **kw)


@dataclass
class Api:
    http: TestClient[Any, Any]
    kube: FakeKube
    repo: TrajectoryRepository
    evaluator: FakeEvaluator
    clock: FakeClock
    store: LocalObjectStore
    default_token: str = field(default_factory=token)

    async def post(
        self, body: Any, tok: str | None = "default", raw: bool = False, headers: dict[str, str] | None = None
    ) -> Any:
        if tok == "default":
            tok = self.default_token
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if tok:
            hdrs["Authorization"] = f"Bearer {tok}"
        data = body if raw else json.dumps(body)
        return await self.http.post(RPC_PATH, data=data, headers=hdrs)

    async def call(
        self, method: str, params: Any = None, tok: str | None = "default", id: Any = 1
    ) -> dict[str, Any]:
        """The response object of one request (result or error)."""
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id}
        if params is not None:
            body["params"] = params
        resp = await self.post(body, tok)
        return dict(await resp.json())

    async def result(self, method: str, params: Any = None, tok: str | None = "default") -> Any:
        reply = await self.call(method, params, tok)
        assert "error" not in reply, reply
        return reply["result"]

    async def error(self, method: str, params: Any = None, tok: str | None = "default") -> dict[str, Any]:
        reply = await self.call(method, params, tok)
        assert "error" in reply, reply
        return dict(reply["error"])

    async def start(self, n: int = 100, tok: str | None = "default", **params: Any) -> dict[str, Any]:
        body = {"agent_id": "code-generator-v2", "config": {"n_iterations": 500}, "training_data": queries(n)}
        return dict(await self.result("training.start_grpo", {**body, **params}, tok))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('rpc-db') / 'agentcore.db'}"


@pytest.fixture(scope="session")
async def repo(sqlite_url: str) -> AsyncIterator[TrajectoryRepository]:
    engine = make_engine(sqlite_url)
    await upgrade(engine)
    yield TrajectoryRepository(session_factory(engine))
    await engine.dispose()


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "jwt_secret": SECRET,
        "cancel_wait_seconds": 1.0,
        "cache_sync_timeout_seconds": 2.0,
        "rate_limits": BIG_LIMITS,
    }
    return Settings(**{**base, **overrides})


@pytest.fixture
def settings() -> Settings:
    """Override in a test module to change the server's settings."""
    return make_settings()


@pytest.fixture
async def api(settings: Settings, repo: TrajectoryRepository, tmp_path: Any) -> AsyncIterator[Api]:
    kube, evaluator, clock = FakeKube(), FakeEvaluator(), FakeClock()
    store = LocalObjectStore(tmp_path / "objects")
    app = create_app(
        settings,
        kube_client_factory=lambda: kube,
        repo=repo,
        object_store=store,
        evaluator=evaluator,
        clock=clock,
    )
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Api(client, kube, repo, evaluator, clock, store)
    finally:
        await client.close()
