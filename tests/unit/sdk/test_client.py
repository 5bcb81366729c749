"""The Python SDK (sync and async) and the `agentcore jobs` commands against the real server app."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest

from agentcore.cli import build_parser
from agentcore.server.jsonrpc import errors
from agentcore.server.ratelimit import RateLimit
from agentcore_sdk import AsyncTrainingClient, ProgressBar, TrainingApiError, TrainingClient
from agentcore_sdk._core import base_of
from agentcore_sdk.models import JobStatusResult, StartGrpoResult
from agentcore_sdk.progress import render
from tests.unit.server.jsonrpc.conftest import BIG_LIMITS, Api, make_settings, token
from tests.unit.server.jsonrpc.helpers import queries, trajectory_rows
from tests.unit.server.jsonrpc.test_jobs import operator_cancels


def base_url(api: Api) -> str:
    return str(api.http.make_url("/")).rstrip("/")


async def progress_to_completion(api: Api, job_id: str) -> None:
    """A trainer reporting progress, then the operator marking the job Completed."""
    for i in (0, 250, 500):
        await asyncio.sleep(0.05)
        api.kube.set_status(job_id, {"phase": "Running", "currentIteration": i, "totalIterations": 500})
    await asyncio.sleep(0.05)
    api.kube.set_status(job_id, {"phase": "Completed", "completedAt": "2026-01-01T00:00:00Z"})


async def test_sync_client_end_to_end(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    client = TrainingClient(base_url(api), api_key=api.default_token)
    config = {"n_iterations": 500, "batch_size": 16}
    job = await asyncio.to_thread(client.start_training, "my-agent", config, queries(100))
    assert isinstance(job, StartGrpoResult) and job.status == "queued"
    status = await asyncio.to_thread(client.get_status, job.job_id)
    assert isinstance(status, JobStatusResult) and status.progress_percent == 0.0
    listed = await asyncio.to_thread(client.list_jobs, agent_id="my-agent")
    assert [j.job_id for j in listed.jobs] == [job.job_id]

    trainer = asyncio.create_task(progress_to_completion(api, str(job.job_id)))
    final = await asyncio.to_thread(client.wait, job.job_id, 0.02, 10, True)
    await trainer
    assert final.status == "completed"
    assert "100.0% iter 500/500 completed" in capsys.readouterr().err  # the progress bar

    await api.repo.add_batch(trajectory_rows(str(job.job_id), 25))
    streamed = await asyncio.to_thread(lambda: list(client.iter_trajectories(job.job_id, page_size=10)))
    assert len({t.trajectory_id for t in streamed}) == 25
    page = await asyncio.to_thread(client.export_trajectories, job.job_id, limit=5, offset=20)
    assert page.returned_count == 5 and page.has_more is False
    evaluation = await asyncio.to_thread(client.evaluate, job.job_id, None, queries(1))
    assert evaluation.metrics.success_rate == 0.85
    assert evaluation.baseline_comparison is not None and evaluation.baseline_comparison.p_value == 0.001

    with pytest.raises(TrainingApiError) as info:
        await asyncio.to_thread(client.cancel, job.job_id)
    assert info.value.code == errors.CANNOT_CANCEL and info.value.data == {"status": "completed"}


async def test_sync_client_errors(api: Api) -> None:
    client = TrainingClient(base_url(api) + "/api/v1/jsonrpc", api_key="wrong")
    with pytest.raises(TrainingApiError) as info:
        await asyncio.to_thread(client.list_jobs)
    assert info.value.code == errors.UNAUTHORIZED and info.value.http_status == 401
    nowhere = TrainingClient("http://127.0.0.1:9", timeout=2)
    with pytest.raises(TrainingApiError, match="cannot reach"):
        await asyncio.to_thread(nowhere.list_jobs)
    client = TrainingClient(base_url(api), api_key=api.default_token)
    job = await asyncio.to_thread(client.start_training, "a", {}, queries(100))
    with pytest.raises(TimeoutError, match="still queued"):
        await asyncio.to_thread(client.wait, job.job_id, 0.01, 0.1)


@pytest.mark.parametrize(
    "settings", [make_settings(rate_limits={**BIG_LIMITS, "training.list_jobs": RateLimit(1, 60)})]
)
async def test_sync_client_retries_after_rate_limits(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    def fake_sleep(seconds: float) -> None:  # the server's clock moves instead of ours
        slept.append(seconds)
        api.clock.now += seconds

    monkeypatch.setattr("agentcore_sdk.client.time.sleep", fake_sleep)
    client = TrainingClient(base_url(api), api_key=api.default_token)
    await asyncio.to_thread(client.list_jobs)
    await asyncio.to_thread(client.list_jobs)  # refused once, retried after retry_after
    assert slept == [60.0]
    impatient = TrainingClient(base_url(api), api_key=api.default_token, max_retries=0)
    with pytest.raises(TrainingApiError) as info:
        await asyncio.to_thread(impatient.list_jobs)
    assert info.value.retry_after == 60 and info.value.http_status == 429
    patient = TrainingClient(base_url(api), api_key=api.default_token, max_retry_wait=10)
    with pytest.raises(TrainingApiError):  # 60 s is longer than it waits
        await asyncio.to_thread(patient.list_jobs)
    assert slept == [60.0]


async def test_async_client(api: Api) -> None:
    async with AsyncTrainingClient(base_url(api), api_key=api.default_token) as client:
        job = await client.start_training("async-agent", {"n_iterations": 500}, queries(100))
        operator = asyncio.create_task(operator_cancels(api, str(job.job_id)))
        cancelled = await client.cancel(job.job_id, reason="Budget exceeded manually")
        await operator
        assert cancelled.status == "cancelled" and cancelled.checkpoint_id == "abc-123-def"
        assert (await client.wait(job.job_id, poll=0.01)).status == "cancelled"
        await api.repo.add_batch(trajectory_rows(str(job.job_id), 12))
        ids = [t.trajectory_id async for t in client.iter_trajectories(job.job_id, page_size=5)]
        assert len(set(ids)) == 12
        with pytest.raises(TrainingApiError) as info:
            await client.get_status("not-a-uuid")
        assert info.value.code == errors.INVALID_PARAMS and info.value.data["field"] == "job_id"


def test_endpoint_and_progress_rendering() -> None:
    assert base_of("https://api.agentcore.ai/") == "https://api.agentcore.ai"
    assert base_of("http://h:8080/api/v1/jsonrpc/") == "http://h:8080"
    fields = {
        "job_id": "550e8400-e29b-41d4-a716-446655440000",
        "progress_percent": 30.0,
        "current_iteration": 150,
        "total_iterations": 500,
        "status": "running",
        "cost_usd": "12.50",
        "budget_usd": "50.00",
    }
    status = JobStatusResult.model_validate(
        {
            **fields,
            "agent_id": "a",
            "metrics": {},
            "budget_remaining_percent": 75.0,
            "started_at": None,
            "estimated_completion": None,
            "best_checkpoint_id": None,
            "namespace": "team-a",
            "name": "j",
        }
    )
    assert render(status, 10) == "550e8400 [###-------]  30.0% iter 150/500 running $12.50/$50.00"
    out = io.StringIO()
    bar = ProgressBar(out)
    bar.update(status)
    bar.update(status)  # unchanged: not repeated
    bar.close()
    assert out.getvalue().count("\n") == 1


# --- agentcore jobs ------------------------------------------------------------------------------------


def jobs_cli(state: Path, *argv: str) -> int:
    args = build_parser().parse_args(["jobs", "--state-dir", str(state), *argv])
    return int(args.func(args))


async def test_jobs_cli(api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "api-url").write_text(base_url(api) + "\n")
    (tmp_path / "token").write_text(token() + "\n")
    job = await api.start(agent_id="cli-agent")

    assert await asyncio.to_thread(jobs_cli, tmp_path, "list", "--agent-id", "cli-agent") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["JOB", "ID", "NAMESPACE", "NAME", "AGENT", "STATUS", "PROGRESS", "COST"]
    assert job["job_id"] in out[1] and "queued" in out[1]

    assert await asyncio.to_thread(jobs_cli, tmp_path, "status", job["job_id"]) == 0
    assert json.loads(capsys.readouterr().out)["job_id"] == job["job_id"]

    operator = asyncio.create_task(operator_cancels(api, job["job_id"]))
    assert await asyncio.to_thread(jobs_cli, tmp_path, "cancel", job["job_id"], "--reason", "r") == 0
    await operator
    assert json.loads(capsys.readouterr().out)["status"] == "cancelled"

    assert (
        await asyncio.to_thread(jobs_cli, tmp_path, "wait", job["job_id"], "--no-progress") == 1
    )  # not completed
    capsys.readouterr()

    await api.repo.add_batch(trajectory_rows(job["job_id"], 7))
    target = tmp_path / "out.jsonl"
    assert await asyncio.to_thread(jobs_cli, tmp_path, "export", job["job_id"], "--out", str(target)) == 0
    assert len(target.read_text().splitlines()) == 7 and "7 trajectories" in capsys.readouterr().err

    assert await asyncio.to_thread(jobs_cli, tmp_path, "status", "not-a-uuid") == 1
    assert "error -32602" in capsys.readouterr().err


def test_jobs_cli_needs_a_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.delenv("AGENTCORE_API_URL", raising=False)
    assert jobs_cli(tmp_path, "list") == 1
    assert "no API server" in capsys.readouterr().err


def test_sdk_console_script_is_agentcore_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    from agentcore_sdk.cli import main

    monkeypatch.delenv("AGENTCORE_API_URL", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["--state-dir", str(tmp_path), "list"])
    assert info.value.code == 1 and "no API server" in capsys.readouterr().err
