"""get_status, list_jobs and cancel over the watch-backed cache; tenant isolation; permissions."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from agentcore.auth.tokens import PERMISSIONS
from agentcore.kube.client import ApiError
from agentcore.server.jsonrpc import errors
from agentcore.server.jsonrpc.models import CancelResult, JobStatusResult, ListJobsResult
from tests.unit.server.jsonrpc.conftest import Api, make_settings, token
from tests.unit.server.jsonrpc.helpers import SPEC_STATUS

RUNNING = SPEC_STATUS


async def until(predicate: Any, seconds: float = 5.0) -> Any:
    """Poll an async predicate (the cache follows the watch asynchronously)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await predicate()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.01)


async def status_of(api: Api, job_id: str, tok: str | None = "default") -> dict[str, Any]:
    return dict(await api.result("training.get_status", {"job_id": job_id}, tok))


async def test_get_status_of_a_queued_job(api: Api) -> None:
    job = await api.start(config={"n_iterations": 500, "max_budget_usd": "50"})
    status = await status_of(api, job["job_id"])
    JobStatusResult.validate_exact(status)
    assert status["status"] == "queued" and status["current_iteration"] == 0
    assert status["total_iterations"] == 500 and status["progress_percent"] == 0.0
    assert status["cost_usd"] == "0.00" and status["budget_usd"] == "50.00"
    assert status["budget_remaining_percent"] == 100.0 and status["metrics"] == {}
    assert status["started_at"] is None and status["best_checkpoint_id"] is None


async def test_get_status_matches_the_spec_example(api: Api) -> None:
    job = await api.start()
    api.kube.set_status(job["job_id"], RUNNING)
    status = await until(lambda: _status_if(api, job["job_id"], "running"))
    JobStatusResult.validate_exact(status)
    assert {k: status[k] for k in ("current_iteration", "total_iterations", "progress_percent")} == {
        "current_iteration": 150,
        "total_iterations": 500,
        "progress_percent": 30.0,
    }
    assert status["metrics"] == {
        "train_loss": 0.234,
        "validation_accuracy": 0.82,
        "avg_reward": 0.65,
        "trajectories_generated": 1200,
    }
    assert status["cost_usd"] == "12.50" and status["budget_usd"] == "50.00"
    assert status["budget_remaining_percent"] == 75.0
    assert status["started_at"] == "2025-10-17T10:30:05Z"
    assert status["estimated_completion"] == "2025-10-17T12:15:00Z"
    assert status["best_checkpoint_id"] == "abc-123-def"
    assert "completed_at" not in status and "reason" not in status


async def _status_if(api: Api, job_id: str, wanted: str) -> dict[str, Any] | None:
    status = await status_of(api, job_id)
    return status if status["status"] == wanted else None


async def test_status_derives_what_the_trainer_has_not_written(api: Api) -> None:
    job = await api.start(config={"n_iterations": 200, "max_budget_usd": "10.00"})
    failed = {
        "phase": "Failed",
        "currentIteration": 50,
        "costUsd": "2.5",
        "completedAt": "2026-01-01T00:00:00Z",
    }
    api.kube.set_status(job["job_id"], {**failed, "reason": "BudgetExceeded", "message": "spent"})
    status = await until(lambda: _status_if(api, job["job_id"], "failed"))
    assert status["progress_percent"] == 25.0 and status["budget_remaining_percent"] == 75.0
    assert status["cost_usd"] == "2.50"
    assert status["completed_at"] == "2026-01-01T00:00:00Z"
    assert (status["reason"], status["message"]) == ("BudgetExceeded", "spent")


async def test_jobs_created_with_kubectl_are_visible_by_uid(api: Api) -> None:
    uid = api.kube.add("team-a", "by-kubectl", {"agentId": "k", "config": {"nIterations": 7}})
    status = await until(lambda: _maybe_status(api, uid))
    assert status["agent_id"] == "k" and status["total_iterations"] == 7 and status["name"] == "by-kubectl"


async def _maybe_status(api: Api, job_id: str) -> dict[str, Any] | None:
    reply = await api.call("training.get_status", {"job_id": job_id})
    return reply.get("result")


async def test_unknown_job(api: Api) -> None:
    error = await api.error("training.get_status", {"job_id": str(uuid.uuid4())})
    assert error == {"code": errors.NOT_FOUND, "message": "Job not found"}


async def test_deleted_job_is_not_found(api: Api) -> None:
    job = await api.start()
    api.kube.delete(job["job_id"])
    assert await until(lambda: _gone(api, job["job_id"]))


async def _gone(api: Api, job_id: str) -> bool:
    return (await api.call("training.get_status", {"job_id": job_id})).get("error", {}).get(
        "code"
    ) == errors.NOT_FOUND


async def test_other_tenants_jobs_are_not_found(api: Api) -> None:
    job = await api.start()  # team-a
    other = token(namespaces=("team-b",), sub="mallory")
    unknown = await api.error("training.get_status", {"job_id": str(uuid.uuid4())}, other)
    for method, params in [
        ("training.get_status", {"job_id": job["job_id"]}),
        ("training.cancel", {"job_id": job["job_id"]}),
        ("training.evaluate", {"job_id": job["job_id"]}),
        ("training.export_trajectories", {"job_id": job["job_id"]}),
    ]:
        assert await api.error(method, params, other) == unknown, method  # indistinguishable
    assert (await api.result("training.list_jobs", {}, other))["jobs"] == []
    assert api.kube.calls.count("patch") == 0
    everywhere = token(namespaces=("*",))
    assert (await status_of(api, job["job_id"], everywhere))["namespace"] == "team-a"


@pytest.mark.parametrize(
    ("method", "permission"),
    [
        ("training.start_grpo", "training:start"),
        ("training.get_status", "training:view"),
        ("training.list_jobs", "training:view"),
        ("training.cancel", "training:cancel"),
        ("training.evaluate", "training:evaluate"),
        ("training.export_trajectories", "data:export"),
    ],
)
async def test_missing_permission_is_forbidden(api: Api, method: str, permission: str) -> None:
    lacking = token(permissions=tuple(p for p in PERMISSIONS if p != permission))
    error = await api.error(method, {"job_id": str(uuid.uuid4())}, lacking)
    assert error["code"] == errors.FORBIDDEN and error["data"] == {"permission": permission}
    admin = token(permissions=(), roles=("admin",))
    reply = await api.call(method, {"job_id": str(uuid.uuid4())}, admin)
    assert reply.get("error", {}).get("code") != errors.FORBIDDEN


async def test_list_jobs_filters_and_pages(api: Api) -> None:
    ids = [(await api.start(agent_id=f"agent-{i % 2}"))["job_id"] for i in range(5)]
    api.kube.set_status(ids[0], {"phase": "Running"})
    await until(lambda: _status_if(api, ids[0], "running"))
    page = await api.result("training.list_jobs", {})
    ListJobsResult.validate_exact(page)
    assert [j["job_id"] for j in page["jobs"]] == ids[::-1]  # newest first
    assert page["total_count"] == 5 and page["has_more"] is False and page["next_cursor"] is None

    only = await api.result("training.list_jobs", {"agent_id": "agent-0"})
    assert [j["job_id"] for j in only["jobs"]] == [ids[4], ids[2], ids[0]]
    running = await api.result("training.list_jobs", {"status": "running"})
    assert [j["job_id"] for j in running["jobs"]] == [ids[0]]
    queued = await api.result("training.list_jobs", {"status": "queued", "agent_id": "agent-1"})
    assert queued["total_count"] == 2

    by_offset = await api.result("training.list_jobs", {"limit": 2, "offset": 2})
    assert [j["job_id"] for j in by_offset["jobs"]] == [ids[2], ids[1]] and by_offset["has_more"]
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await api.result("training.list_jobs", params)
        seen += [j["job_id"] for j in page["jobs"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == ids[::-1]


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"limit": 101}, errors.INVALID_PARAMS, "limit"),
        ({"limit": 0}, errors.INVALID_PARAMS, "limit"),
        ({"offset": -1}, errors.INVALID_PARAMS, "offset"),
        ({"status": "paused"}, errors.INVALID_PARAMS, "status"),
        ({"cursor": "not-a-cursor"}, errors.INVALID_PARAMS, "cursor"),
        ({"namespace": "team-b"}, errors.FORBIDDEN, "namespace"),
    ],
)
async def test_list_jobs_errors(api: Api, params: dict[str, Any], code: int, field: str) -> None:
    error = await api.error("training.list_jobs", params)
    assert error["code"] == code and error["data"]["field"] == field


# --- cancel ---------------------------------------------------------------------------------------


async def operator_cancels(api: Api, job_id: str, delay: float = 0.05) -> None:
    """What the operator does on spec.cancel: stop the trainer, record the outcome."""
    await until(lambda: _cancel_requested(api, job_id))
    await asyncio.sleep(delay)
    api.kube.set_status(
        job_id,
        {
            "phase": "Cancelled",
            "currentIteration": 150,
            "cancellation": {
                "cancelledAt": "2025-10-17T11:00:00Z",
                "reason": "Budget exceeded manually",
                "iterationsCompleted": 150,
                "checkpointSaved": True,
                "checkpointId": "abc-123-def",
            },
        },
    )


async def _cancel_requested(api: Api, job_id: str) -> bool:
    return bool(api.kube.find(job_id)["spec"].get("cancel", {}).get("requested"))


async def test_cancel_matches_the_spec_example(api: Api) -> None:
    job = await api.start()
    operator = asyncio.create_task(operator_cancels(api, job["job_id"]))
    result = await api.result(
        "training.cancel", {"job_id": job["job_id"], "reason": "Budget exceeded manually"}
    )
    await operator
    CancelResult.validate_exact(result)
    assert result == {
        "job_id": job["job_id"],
        "status": "cancelled",
        "cancelled_at": "2025-10-17T11:00:00Z",
        "iterations_completed": 150,
        "checkpoint_saved": True,
        "checkpoint_id": "abc-123-def",
        "reason": "Budget exceeded manually",
    }
    assert api.kube.find(job["job_id"])["spec"]["cancel"] == {
        "requested": True,
        "reason": "Budget exceeded manually",
    }


async def test_cancel_that_does_not_finish_in_time_reports_cancelling(api: Api) -> None:
    job = await api.start()
    api.kube.set_status(job["job_id"], {"phase": "Running", "currentIteration": 3})
    await until(lambda: _status_if(api, job["job_id"], "running"))
    result = await api.result("training.cancel", {"job_id": job["job_id"]})  # nobody acts on it (1 s wait)
    CancelResult.validate_exact(result)
    assert result["status"] == "cancelling" and result["iterations_completed"] == 3
    assert result["cancelled_at"] is None and result["checkpoint_saved"] is None
    # Asking again does not patch again; it waits for the same outcome.
    patches = api.kube.calls.count("patch")
    operator = asyncio.create_task(operator_cancels(api, job["job_id"]))
    again = await api.result("training.cancel", {"job_id": job["job_id"], "reason": "later"})
    await operator
    assert again["status"] == "cancelled" and api.kube.calls.count("patch") == patches


@pytest.mark.parametrize("phase", ["Completed", "Failed", "Cancelled"])
async def test_cannot_cancel_a_finished_job(api: Api, phase: str) -> None:
    job = await api.start()
    api.kube.set_status(job["job_id"], {"phase": phase})
    await until(lambda: _status_if(api, job["job_id"], phase.lower()))
    error = await api.error("training.cancel", {"job_id": job["job_id"]})
    assert error["code"] == errors.CANNOT_CANCEL
    assert error["message"] == f"Cannot cancel: the job is already {phase.lower()}"
    assert error["data"] == {"status": phase.lower()}


async def test_job_that_completes_while_cancelling(api: Api) -> None:
    job = await api.start()

    async def completes() -> None:
        await until(lambda: _cancel_requested(api, job["job_id"]))
        api.kube.set_status(job["job_id"], {"phase": "Completed"})

    task = asyncio.create_task(completes())
    error = await api.error("training.cancel", {"job_id": job["job_id"]})
    await task
    assert error["code"] == errors.CANNOT_CANCEL and "finished as completed" in error["message"]


@pytest.mark.parametrize("settings", [make_settings(cancel_wait_seconds=5.0)])
async def test_job_deleted_while_cancelling(api: Api) -> None:
    job = await api.start()

    async def deleted() -> None:
        await until(lambda: _cancel_requested(api, job["job_id"]))
        api.kube.delete(job["job_id"])

    task = asyncio.create_task(deleted())
    error = await api.error("training.cancel", {"job_id": job["job_id"]})
    await task
    assert error["code"] == errors.NOT_FOUND


async def test_cancel_reason_is_bounded(api: Api) -> None:
    job = await api.start()
    error = await api.error("training.cancel", {"job_id": job["job_id"], "reason": "x" * 1025})
    assert error["code"] == errors.INVALID_PARAMS and error["data"]["field"] == "reason"


async def test_cancel_refused_by_the_apiserver(api: Api) -> None:
    """The CRD's rule refuses cancelling a job that finished after the cache last saw it."""
    job = await api.start()
    api.kube.fail["patch"] = ApiError(
        422, {"reason": "Invalid", "message": "cannot cancel: the job already finished"}
    )
    error = await api.error("training.cancel", {"job_id": job["job_id"]})
    assert error["code"] == errors.CANNOT_CANCEL
