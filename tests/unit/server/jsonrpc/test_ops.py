"""Health, readiness, metrics, structured logs and rpc.discover."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from agentcore.auth.tokens import ADMIN_ROLE
from agentcore.devenv.procs import free_port
from agentcore.kube.client import ApiError
from agentcore.logs import JsonFormatter
from agentcore.server.app import create_app
from agentcore.server.jsonrpc import errors
from agentcore.server.jsonrpc.models import ListJobsResult
from agentcore.storage.db import make_engine, session_factory
from agentcore.storage.trajectories import TrajectoryRepository
from tests.unit.server.jsonrpc.conftest import Api, FakeEvaluator, FakeKube, make_settings, token

ADMIN = {"Authorization": f"Bearer {token(roles=(ADMIN_ROLE,))}"}


async def test_healthz_and_readyz(api: Api) -> None:
    assert (await (await api.http.get("/healthz")).json()) == {"status": "ok"}
    for _ in range(100):
        resp = await api.http.get("/readyz")
        if resp.status == 200:
            break
        await asyncio.sleep(0.02)
    assert await resp.json() == {"status": "ready", "checks": {"trainingjob_cache": "ok", "database": "ok"}}


async def test_not_ready_without_the_apiserver_or_the_database(tmp_path: Any) -> None:
    kube = FakeKube()
    kube.fail["list"] = ApiError(503, {"message": "apiserver down"})
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/missing-dir/db.sqlite")
    repo = TrajectoryRepository(session_factory(engine))
    app = create_app(
        make_settings(cache_sync_timeout_seconds=0.2), kube_client_factory=lambda: kube, repo=repo
    )
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["checks"] == {"trainingjob_cache": "not synced", "database": "unreachable"}
        # Reads refuse rather than answer "not found" from an empty cache.
        headers = {"Authorization": f"Bearer {token()}"}
        body = {"jsonrpc": "2.0", "method": "training.list_jobs", "id": 1}
        reply = await (await client.post("/api/v1/jsonrpc", json=body, headers=headers)).json()
        assert reply["error"]["code"] == errors.INTERNAL_ERROR and "not synced" in reply["error"]["message"]
        del kube.fail["list"]  # the apiserver comes back: the cache retries and syncs
        for _ in range(200):
            reply = await (await client.post("/api/v1/jsonrpc", json=body, headers=headers)).json()
            if "result" in reply:
                break
            await asyncio.sleep(0.05)
        assert reply["result"]["jobs"] == []
    await engine.dispose()


async def test_metrics(api: Api) -> None:
    await api.start()
    await api.call("training.get_status", {"job_id": "nope"})
    await api.call("no.such.method.with.a.long.name")
    text = await (await api.http.get("/metrics", headers=ADMIN)).text()
    assert 'agentcore_api_rpc_requests_total{code="ok",method="training.start_grpo"} 1.0' in text
    assert 'agentcore_api_rpc_requests_total{code="-32602",method="training.get_status"} 1.0' in text
    assert 'agentcore_api_rpc_requests_total{code="-32601",method="unknown"} 1.0' in text
    assert "no.such.method" not in text  # labels stay bounded
    assert (
        'agentcore_api_rpc_request_duration_seconds_bucket{le="0.005",method="training.start_grpo"}' in text
    )
    assert 'agentcore_api_http_requests_total{route="/api/v1/jsonrpc",status="200"}' in text
    assert "agentcore_api_cached_trainingjobs 1.0" in text


async def test_metrics_on_the_api_port_need_an_admin_token(api: Api) -> None:
    """Red team (issue 12): /metrics on the API port was open to anyone who could reach it."""
    assert (await api.http.get("/metrics")).status == 401
    tenant = {"Authorization": f"Bearer {token()}"}
    assert (await api.http.get("/metrics", headers=tenant)).status == 403
    resp = await api.http.get("/metrics", headers=ADMIN)
    assert resp.status == 200 and "agentcore_api_http_requests_total" in await resp.text()


async def test_metrics_port_serves_metrics_apart_from_the_api(repo: TrajectoryRepository, tmp_path) -> None:
    """Like the operator's --metrics-port: a listener for Prometheus only, without tokens, so the
    API port's /metrics can stay admin-only."""
    port = free_port()
    app = create_app(
        make_settings(metrics_port=port), kube_client_factory=FakeKube, repo=repo, evaluator=FakeEvaluator()
    )
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as resp,
        ):
            assert resp.status == 200 and "agentcore_api_http_requests_total" in await resp.text()
            async with session.post(f"http://127.0.0.1:{port}/api/v1/jsonrpc", json={}) as rpc:
                assert rpc.status in (404, 405)  # nothing but metrics on that port
    finally:
        await client.close()


async def test_discover_is_an_openrpc_document(api: Api) -> None:
    doc = await api.result("rpc.discover")
    assert doc["openrpc"].startswith("1.") and doc["info"]["title"]
    methods = {m["name"]: m for m in doc["methods"]}
    assert set(methods) == {
        "training.start_grpo",
        "training.get_status",
        "training.cancel",
        "training.evaluate",
        "training.export_trajectories",
        "training.list_jobs",
    }
    start = methods["training.start_grpo"]
    params = {p["name"]: p for p in start["params"]}
    assert params["agent_id"]["required"] and params["training_data"]["required"]
    assert not params["evaluation_data"]["required"]
    assert params["config"]["schema"] == {
        "$ref": "#/components/schemas/StartGrpoConfig",
        "description": "Training configuration.",
    }
    grpo = doc["components"]["schemas"]["StartGrpoConfig"]["properties"]
    assert grpo["workers"]["minimum"] == 1 and grpo["workers"]["default"] == 1
    assert grpo["n_iterations"]["minimum"] == 1 and grpo["n_iterations"]["maximum"] == 10000  # snake_case
    assert start["x-permission"] == "training:start"
    assert {e["code"] for e in start["errors"]} >= {errors.BUDGET_EXCEEDED, errors.VALIDATION_FAILED}
    assert start["result"]["schema"]["$ref"] == "#/components/schemas/StartGrpoResult"
    export = {p["name"]: p for p in methods["training.export_trajectories"]["params"]}
    assert export["limit"]["schema"]["maximum"] == 10000 and export["limit"]["schema"]["default"] == 1000
    assert "ListJobsResult" in doc["components"]["schemas"]
    assert str(errors.RATE_LIMITED) in doc["components"]["errors"]
    ListJobsResult.validate_exact({"jobs": [], "total_count": 0, "has_more": False, "next_cursor": None})


def test_json_log_lines() -> None:
    record = logging.LogRecord("agentcore.api.access", logging.INFO, __file__, 1, "POST %s", ("/x",), None)
    record.sub = "alice"
    record.status = 200
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "POST /x" and line["sub"] == "alice" and line["status"] == 200
    assert line["severity"] == "info" and line["timestamp"].endswith("Z")


async def test_access_lines_reach_the_log_when_the_server_is_idle(api: Api) -> None:
    import io

    from agentcore import logs

    root = logging.getLogger()
    saved, saved_level, saved_handler = root.handlers[:], root.level, logs._handler
    stream = io.StringIO()
    logs.configure("INFO", stream=stream)
    try:
        await api.start()
        await api.call("training.get_status", {"job_id": "nope"})
        for _ in range(40):  # no further request comes to push the line out: the flusher does
            lines = [json.loads(line) for line in stream.getvalue().splitlines()]
            if any(line.get("rpc") == ["training.get_status"] for line in lines):
                break
            await asyncio.sleep(logs.FLUSH_SECONDS / 4)
        else:
            raise AssertionError(f"no access line after {10 * logs.FLUSH_SECONDS} s: {stream.getvalue()!r}")
    finally:
        root.handlers[:], logs._handler = saved, saved_handler
        root.setLevel(saved_level)


async def test_the_servers_own_process_freezes_its_startup_heap_once_the_cache_synced() -> None:
    import gc

    before = gc.get_freeze_count()
    app = create_app(make_settings(), kube_client_factory=FakeKube, freeze_heap=True)
    try:
        async with TestClient(TestServer(app)) as client:
            for _ in range(100):
                if gc.get_freeze_count() > before:
                    break
                await asyncio.sleep(0.02)
            assert gc.get_freeze_count() > before
            assert (await client.get("/healthz")).status == 200
    finally:
        gc.unfreeze()  # this test shares its process: let the collector see these objects again
