"""The trainer process against real PostgreSQL and S3: resume after a kill, budget stop, failing
reward functions, SIGTERM. Runs `agentcore trainer` standalone as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from agentcore_trainer.datasets import generate
from tests.conftest import trajectory_counts

pytestmark = pytest.mark.integration
AGENTCORE = str(Path(sys.executable).parent / "agentcore")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("data")
    train, held_out = base / "train.json", base / "eval.json"
    train.write_text(json.dumps(generate(200, seed=11)))
    held_out.write_text(json.dumps(generate(40, seed=12)))
    return train, held_out


class Run:
    """One `agentcore trainer` standalone process with PostgreSQL and S3 storage."""

    def __init__(
        self,
        tmp: Path,
        postgres,
        s3,
        datasets,
        config: dict,
        name: str | None = None,
        extra_env: dict | None = None,
    ) -> None:
        self.name = name or f"run-{uuid.uuid4().hex[:8]}"
        self.config_file = tmp / f"{self.name}.json"
        self.config_file.write_text(json.dumps(config))
        self.bucket = f"ckpt-{uuid.uuid4().hex[:8]}"
        self.argv = [
            AGENTCORE,
            "trainer",
            "--dataset",
            str(datasets[0]),
            "--eval-dataset",
            str(datasets[1]),
            "--config",
            str(self.config_file),
            "--name",
            self.name,
            "--state-dir",
            str(tmp / self.name),
            "--database-url",
            postgres.dsn,
            "--object-store",
            f"s3://{self.bucket}/agentcore",
        ]
        creds = s3.credentials
        self.env = {
            **os.environ,
            "AGENTCORE_S3_ENDPOINT": creds.endpoint_url,
            "AWS_ACCESS_KEY_ID": creds.access_key,
            "AWS_SECRET_ACCESS_KEY": creds.secret_key,
            "AWS_REGION": creds.region,
            **(extra_env or {}),
        }
        self.reports: list[dict] = []

    def start(self) -> subprocess.Popen:
        return subprocess.Popen(
            self.argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )

    def run_to_end(self, timeout: float = 120) -> int:
        proc = self.start()
        out, _ = proc.communicate(timeout=timeout)
        self.reports += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return proc.returncode

    def run_until(self, iteration: int, then: signal.Signals) -> int:
        proc = self.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            report = json.loads(line)
            self.reports.append(report)
            if report.get("currentIteration", 0) >= iteration:
                proc.send_signal(then)
                break
        rest, _ = proc.communicate(timeout=60)
        self.reports += [json.loads(line) for line in rest.splitlines() if line.startswith("{")]
        return proc.returncode

    def final(self, key: str):
        return next(r[key] for r in reversed(self.reports) if key in r)

    @property
    def job_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"agentcore-standalone/{self.name}"))


BASE = {
    "n_iterations": 40,
    "batch_size": 8,
    "n_trajectories_per_query": 4,
    "checkpoint_interval": 5,
    "max_budget_usd": "10",
    "max_steps_per_trajectory": 6,
    "seed": 3,
    "evaluation_interval": 10,
}


def test_killed_run_resumes_without_duplicates_or_double_cost(tmp_path, postgres, s3, datasets):
    killed = Run(tmp_path, postgres, s3, datasets, BASE)
    assert killed.run_until(12, signal.SIGKILL) == -signal.SIGKILL
    assert killed.run_to_end() == 0
    assert killed.final("currentIteration") == 40
    assert killed.final("trainer")["state"] == "Completed"
    total, distinct = trajectory_counts(postgres.dsn, killed.job_id)
    assert total == distinct == 40 * 8 * 4

    straight = Run(tmp_path, postgres, s3, datasets, BASE)
    assert straight.run_to_end() == 0
    # Same seed, same math: the resumed run's cost equals an uninterrupted run's to the cent.
    assert Decimal(killed.final("costUsd")) == Decimal(straight.final("costUsd"))
    evaluation = killed.final("evaluation")
    assert evaluation["queriesEvaluated"] == 40 and "baselineComparison" in evaluation


def test_sigterm_checkpoints_and_exits_143_then_resumes(tmp_path, postgres, s3, datasets):
    run = Run(tmp_path, postgres, s3, datasets, {**BASE, "checkpoint_interval": 100})
    started = time.monotonic()
    assert run.run_until(7, signal.SIGTERM) == 143
    assert time.monotonic() - started < 60
    stopped_at = run.final("currentIteration")
    assert run.final("trainer")["state"] == "Stopped"
    # No interval checkpoint was due (interval 100): the one saved is the stop checkpoint.
    assert [c["iteration"] for c in run.final("checkpoints")] == [stopped_at]
    keys = s3.client().list_objects_v2(Bucket=run.bucket)["Contents"]
    assert any(k["Key"].endswith(".json") for k in keys) and any(k["Key"].endswith(".npz") for k in keys)
    assert run.run_to_end() == 0
    assert run.final("currentIteration") == 40
    total, distinct = trajectory_counts(postgres.dsn, run.job_id)
    assert total == distinct == 40 * 8 * 4


def test_budget_stop_before_passing_the_budget(tmp_path, postgres, s3, datasets):
    config = {
        **BASE,
        "n_iterations": 500,
        "batch_size": 2,
        "n_trajectories_per_query": 2,
        "max_budget_usd": "0.05",
    }
    run = Run(tmp_path, postgres, s3, datasets, config)
    assert run.run_to_end() == 0
    assert run.final("trainer")["state"] == "BudgetExceeded"
    assert Decimal(run.final("costUsd")) <= Decimal("0.05")
    assert run.final("currentIteration") < 500
    assert run.final("budgetWarnings") == [75, 90]
    assert run.final("checkpoints")[-1]["iteration"] == run.final("currentIteration")


def test_failing_reward_function_marks_trajectories_failed(tmp_path, postgres, s3, datasets):
    module = tmp_path / "flaky_rewards.py"
    module.write_text(
        textwrap.dedent("""
        def flaky(trajectory, expected):
            if len(trajectory.get("steps", [])) % 2 == 0:
                raise RuntimeError("reward service unavailable")
            return 1.0
    """)
    )
    config = {
        **BASE,
        "n_iterations": 6,
        "reward_functions": [
            {"entry_point": "agentcore_trainer.rewards:outcome_reward", "weight": 1.0},
            {"entry_point": "flaky_rewards:flaky", "weight": 0.5},
        ],
    }
    run = Run(tmp_path, postgres, s3, datasets, config, extra_env={"PYTHONPATH": str(tmp_path)})
    assert run.run_to_end() == 0
    assert run.final("trainer")["state"] == "Completed"

    async def errors():
        engine = create_async_engine(postgres.dsn)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("select error from trajectories where job_id = :j and error is not null"),
                    {"j": run.job_id},
                )
            ).all()
        await engine.dispose()
        return [r[0] for r in rows]

    recorded = asyncio.run(errors())
    assert recorded and all("reward service unavailable" in e for e in recorded)
