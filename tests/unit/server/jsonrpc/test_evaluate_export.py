"""training.evaluate through an injected evaluator, and training.export_trajectories over SQLite
(every validation case in docs/spec/training-api-reference.md; the PostgreSQL run is in
tests/integration/test_rpc.py)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agentcore.server.app import create_app
from agentcore.server.jsonrpc import errors
from agentcore.server.jsonrpc.evaluation import EvaluationError
from agentcore.server.jsonrpc.models import EvaluateResult, ExportTrajectoriesResult
from tests.unit.server.jsonrpc.conftest import Api, FakeKube, make_settings, token
from tests.unit.server.jsonrpc.helpers import queries, trajectory_rows

MISSING = object()
CHECKPOINTS = {
    "checkpoints": [
        {"id": "ckpt-1", "iteration": 10, "uri": "file:///c/1", "createdAt": "2026-01-01T00:00:00Z"},
        {"id": "ckpt-2", "iteration": 20, "uri": "file:///c/2", "createdAt": "2026-01-01T00:01:00Z"},
    ],
    "bestCheckpointId": "ckpt-2",
}


async def job_with_checkpoints(api: Api) -> str:
    job = await api.start(evaluation_data=queries(3))
    api.kube.set_status(job["job_id"], CHECKPOINTS)
    for _ in range(200):  # until the watch has delivered the status
        status = await api.result("training.get_status", {"job_id": job["job_id"]})
        if status["best_checkpoint_id"] == "ckpt-2":
            return str(job["job_id"])
        await asyncio.sleep(0.01)
    raise AssertionError("status never reached the cache")


async def test_evaluate_matches_the_spec_example(api: Api) -> None:
    job_id = await job_with_checkpoints(api)
    result = await api.result("training.evaluate", {"job_id": job_id, "checkpoint_id": "ckpt-2"})
    EvaluateResult.validate_exact(result)
    assert result["job_id"] == job_id and result["checkpoint_id"] == "ckpt-2"
    assert result["metrics"] == {
        "success_rate": 0.85,
        "avg_reward": 0.72,
        "avg_steps": 8.5,
        "tool_accuracy": 0.9,
    }
    assert result["baseline_comparison"]["statistically_significant"] is True
    assert (result["queries_evaluated"], result["evaluation_duration_ms"]) == (50, 45000)
    job, checkpoint, custom = api.evaluator.calls[-1]
    # The evaluator gets the whole resource, datasets included (the cache keeps none).
    assert len(job["spec"]["trainingData"]["inline"]) == 100 and job["metadata"]["uid"] == job_id
    assert checkpoint == "ckpt-2" and custom is None


async def test_evaluate_defaults_and_custom_queries(api: Api) -> None:
    job = await api.start()
    result = await api.result(
        "training.evaluate", {"job_id": job["job_id"], "evaluation_queries": queries(2)}
    )
    assert result["checkpoint_id"] == "ckpt-best"  # the backend's choice when none is named
    assert api.evaluator.calls[-1][2] == queries(2)


async def test_evaluate_errors(api: Api) -> None:
    job_id = await job_with_checkpoints(api)
    missing = await api.error("training.evaluate", {"job_id": job_id, "checkpoint_id": "nope"})
    assert missing == {"code": errors.NOT_FOUND, "message": "Checkpoint not found"}
    unknown = await api.error("training.evaluate", {"job_id": str(uuid.uuid4())})
    assert unknown["code"] == errors.NOT_FOUND
    bad = await api.error("training.evaluate", {"job_id": job_id, "evaluation_queries": [{"query": "q"}]})
    assert (
        bad["code"] == errors.VALIDATION_FAILED
        and bad["data"]["field"] == "evaluation_queries[0].expected_outcome"
    )
    assert (await api.error("training.evaluate", {"job_id": job_id, "evaluation_queries": []}))["code"] == (
        errors.VALIDATION_FAILED
    )
    assert (await api.error("training.evaluate", {"job_id": "x"}))["code"] == errors.INVALID_PARAMS


async def test_evaluation_failures_are_40004(api: Api) -> None:
    job = await api.start()
    api.evaluator.error = EvaluationError("policy checkpoint is corrupt")
    error = await api.error("training.evaluate", {"job_id": job["job_id"]})
    assert error["code"] == errors.EVALUATION_FAILED
    assert error["message"] == "Evaluation failed: policy checkpoint is corrupt"
    api.evaluator.error = RuntimeError("secret internals")
    error = await api.error("training.evaluate", {"job_id": job["job_id"]})
    assert error == {
        "code": errors.EVALUATION_FAILED,
        "message": "Evaluation failed: the evaluation backend failed",
    }
    api.evaluator.error = None
    api.evaluator.result = {"metrics": "not an object"}
    error = await api.error("training.evaluate", {"job_id": job["job_id"]})
    assert error["code"] == errors.EVALUATION_FAILED and "invalid result" in error["message"]


async def test_default_evaluator_is_not_configured(repo: Any) -> None:
    kube = FakeKube()
    app = create_app(make_settings(), kube_client_factory=lambda: kube, repo=repo)
    async with TestClient(TestServer(app)) as client:
        headers = {"Authorization": f"Bearer {token()}"}
        start = {"agent_id": "a", "config": {}, "training_data": queries(100)}
        body = {"jsonrpc": "2.0", "method": "training.start_grpo", "params": start, "id": 1}
        job = (await (await client.post("/api/v1/jsonrpc", json=body, headers=headers)).json())["result"]
        body = {"jsonrpc": "2.0", "method": "training.evaluate", "params": {"job_id": job["job_id"]}, "id": 2}
        error = (await (await client.post("/api/v1/jsonrpc", json=body, headers=headers)).json())["error"]
    assert error["code"] == errors.EVALUATION_FAILED
    assert error["message"] == "Evaluation failed: evaluation backend not configured on this server"


# --- export_trajectories ------------------------------------------------------------------------------


@pytest.fixture
async def exported(api: Api) -> tuple[Api, str]:
    job = await api.start()
    await api.repo.add_batch(trajectory_rows(job["job_id"], 50))
    return api, str(job["job_id"])


async def test_export_matches_the_spec_example(exported: tuple[Api, str]) -> None:
    api, job_id = exported
    params = {"job_id": job_id, "success_only": True, "min_reward": 0.5, "limit": 100, "offset": 0}
    result = await api.result("training.export_trajectories", params)
    ExportTrajectoriesResult.validate_exact(result)
    expected = [i for i in range(50) if i % 3 == 0 and (i % 10) / 10 >= 0.5]
    assert result["total_count"] == result["returned_count"] == len(expected)
    assert result["has_more"] is False and result["next_cursor"] is None
    first = result["trajectories"][0]
    spec_fields = {"trajectory_id", "query", "steps", "reward", "normalized_reward", "advantage", "success"}
    assert spec_fields | {"execution_time_ms"} <= set(first)
    assert all(t["success"] and t["reward"] >= 0.5 for t in result["trajectories"])


async def test_export_filters(exported: tuple[Api, str]) -> None:
    api, job_id = exported
    everything = await api.result("training.export_trajectories", {"job_id": job_id})
    assert everything["total_count"] == 50 and everything["returned_count"] == 50
    successful = await api.result("training.export_trajectories", {"job_id": job_id, "success_only": True})
    assert successful["total_count"] == 17
    rewarded = await api.result("training.export_trajectories", {"job_id": job_id, "min_reward": 0.8})
    assert rewarded["total_count"] == 10
    integer_reward = await api.result("training.export_trajectories", {"job_id": job_id, "min_reward": 1})
    assert integer_reward["total_count"] == 0


async def test_export_pages_by_offset_and_cursor(exported: tuple[Api, str]) -> None:
    api, job_id = exported
    by_offset: list[str] = []
    for offset in range(0, 50, 7):
        page = await api.result(
            "training.export_trajectories", {"job_id": job_id, "limit": 7, "offset": offset}
        )
        assert page["has_more"] == (offset + 7 < 50)
        by_offset += [t["trajectory_id"] for t in page["trajectories"]]
    by_cursor: list[str] = []
    params: dict[str, Any] = {"job_id": job_id, "limit": 7}
    while True:
        page = await api.result("training.export_trajectories", params)
        by_cursor += [t["trajectory_id"] for t in page["trajectories"]]
        if not page["has_more"]:
            break
        params["cursor"] = page["next_cursor"]
    assert by_offset == by_cursor and len(set(by_cursor)) == 50


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"job_id": MISSING}, errors.INVALID_PARAMS, "job_id"),
        ({"job_id": "not-a-uuid"}, errors.INVALID_PARAMS, "job_id"),
        ({"job_id": 12345}, errors.INVALID_PARAMS, "job_id"),
        ({"limit": 10001}, errors.EXPORT_LIMIT_EXCEEDED, "limit"),
        ({"success_only": "yes"}, errors.INVALID_PARAMS, "success_only"),
        ({"success_only": 1}, errors.INVALID_PARAMS, "success_only"),
        ({"min_reward": "high"}, errors.INVALID_PARAMS, "min_reward"),
        ({"min_reward": True}, errors.INVALID_PARAMS, "min_reward"),
        ({"limit": "100"}, errors.INVALID_PARAMS, "limit"),
        ({"limit": 1.5}, errors.INVALID_PARAMS, "limit"),
        ({"limit": 0}, errors.INVALID_PARAMS, "limit"),
        ({"offset": -1}, errors.INVALID_PARAMS, "offset"),
        ({"cursor": "garbage"}, errors.INVALID_PARAMS, "cursor"),
        ({"cursor": "W10", "offset": 5}, errors.INVALID_PARAMS, "offset"),
    ],
)
async def test_export_validation(
    exported: tuple[Api, str], params: dict[str, Any], code: int, field: str
) -> None:
    api, job_id = exported
    body = {k: v for k, v in {"job_id": job_id, **params}.items() if v is not MISSING}
    error = await api.error("training.export_trajectories", body)
    assert error["code"] == code and error["data"]["field"] == field


async def test_export_limit_of_10000_is_allowed(exported: tuple[Api, str]) -> None:
    api, job_id = exported
    result = await api.result("training.export_trajectories", {"job_id": job_id, "limit": 10000})
    assert result["returned_count"] == 50


async def test_export_unknown_job_and_failing_database(exported: tuple[Api, str], monkeypatch: Any) -> None:
    api, job_id = exported
    error = await api.error("training.export_trajectories", {"job_id": str(uuid.uuid4())})
    assert error["code"] == errors.NOT_FOUND

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionRefusedError("postgres at 10.0.0.7:5432 refused")

    monkeypatch.setattr(api.repo, "page", broken)
    error = await api.error("training.export_trajectories", {"job_id": job_id})
    assert error == {"code": errors.INTERNAL_ERROR, "message": "Internal error"}


async def test_exports_are_audited_like_the_rest_api(exported: tuple[Api, str]) -> None:
    from sqlalchemy import select

    from agentcore.storage.tables import AuditEntry

    api, job_id = exported
    await api.result("training.export_trajectories", {"job_id": job_id, "limit": 5, "success_only": True})
    async with api.repo.sessions() as session:
        rows = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "trajectories.export"))
        ).all()
    entry = next(row[0] for row in rows if (row[0].details or {}).get("job_id") == job_id)
    assert entry.actor == "alice" and entry.resource_kind == "TrainingJob" and entry.outcome == "success"
    assert entry.details == {
        "job_id": job_id,
        "returned_count": 5,
        "offset": 0,
        "cursor": False,
        "success_only": True,
        "min_reward": None,
    }
