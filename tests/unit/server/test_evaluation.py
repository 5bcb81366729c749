"""training.evaluate's backend: the trainer's evaluation worker runs in a subprocess that holds no
platform credential, and a reward function that kills its process cannot stop the server."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from agentcore.api.training import GRPOConfig, RewardFunction, TrainingJob
from agentcore.server.evaluation import CheckpointEvaluator
from agentcore.server.jsonrpc.errors import RpcError
from agentcore.server.jsonrpc.evaluation import EvaluationError
from agentcore.storage.checkpoints import CheckpointManager, checkpoint_prefix
from agentcore.storage.objectstore import LocalObjectStore
from agentcore_trainer.algorithm.trainer import Trainer
from agentcore_trainer.datasets import generate
from agentcore_trainer.runtime.backends import algo_config
from tests.conftest import REPO

NO_KUBE: Any = None  # queries are passed in: the evaluator reads no data source
SECRETS = {"AGENTCORE_JWT_SECRET": "s3cr3t", "AWS_SECRET_ACCESS_KEY": "key", "AGENTCORE_DATABASE_URL": "pg"}


def visible_secrets(trajectory: Any, expected: Any) -> float:
    """A reward function that scores how many platform secrets it can read (it should read none)."""
    return float(sum(name in os.environ for name in SECRETS) + ("KUBECONFIG" in os.environ))


def exits(trajectory: Any, expected: Any) -> float:
    sys.exit(3)


def job(tmp_path, *entry_points: str) -> tuple[dict[str, Any], LocalObjectStore]:
    functions = [RewardFunction(entry_point=e) for e in entry_points] or None
    config = GRPOConfig(n_iterations=2, batch_size=4, n_trajectories_per_query=2, reward_functions=functions)
    queries = generate(120, seed=1)
    store = LocalObjectStore(tmp_path / "objects")
    trainer = Trainer(queries, algo_config(config), batch_size=4, group_size=2, max_steps=4, seed=0)
    trainer.step()
    manager = CheckpointManager(store, checkpoint_prefix("tenant-a", "job"))
    manager.save(trainer.state().to_bytes(), 1, "0.01")
    resource = TrainingJob.model_validate(
        {
            "metadata": {"name": "job", "namespace": "tenant-a", "uid": "u1"},
            "spec": {"agentId": "a", "config": config.to_resource(), "trainingData": {"inline": queries}},
        }
    )
    return resource.to_resource(), store


@pytest.fixture
def platform_env(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KUBECONFIG", "/etc/admin.kubeconfig")
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the worker imports this module's reward functions


async def test_reward_functions_see_no_platform_secret(tmp_path, platform_env) -> None:
    body, store = job(tmp_path, "tests.unit.server.test_evaluation:visible_secrets")
    result = await CheckpointEvaluator(store, NO_KUBE).evaluate(body, None, generate(20, seed=2))
    assert result["queries_evaluated"] == 20
    assert visible_secrets({}, {}) == 4  # here, in the server's process, all of them are visible
    # Environment step rewards are <= 0; one secret visible to the worker would add 1 per query.
    assert result["metrics"]["avg_reward"] <= 0.0


async def test_a_reward_function_that_exits_fails_only_its_worker(tmp_path, platform_env) -> None:
    body, store = job(tmp_path, "tests.unit.server.test_evaluation:exits")
    evaluator = CheckpointEvaluator(store, NO_KUBE)
    with pytest.raises(EvaluationError, match="worker failed"):
        await evaluator.evaluate(body, None, generate(5, seed=2))
    good, store = job(tmp_path / "again")
    result = await CheckpointEvaluator(store, NO_KUBE).evaluate(good, None, generate(5, seed=2))
    assert result["queries_evaluated"] == 5  # this process is alive and evaluates the next request


async def test_unknown_checkpoint_is_not_found(tmp_path) -> None:
    body, store = job(tmp_path)
    with pytest.raises(RpcError) as caught:
        await CheckpointEvaluator(store, NO_KUBE).evaluate(body, "ckpt-nope", generate(5, seed=2))
    assert caught.value.code == -32001


# A stand-in worker process that records when it runs (the real one is tested above): which
# requests overlap is what the semaphores decide, not what the worker does.
RECORDING_WORKER = """
import json, sys, time
with open(sys.argv[1], "a") as log:
    log.write(f"{time.monotonic()} start\\n")
time.sleep(0.4)
with open(sys.argv[1], "a") as log:
    log.write(f"{time.monotonic()} end\\n")
print(json.dumps({"metrics": {}}))
"""


def _most_at_once(log_path) -> int:
    events = sorted(
        (float(t), kind) for t, kind in (line.split() for line in log_path.read_text().splitlines())
    )
    running = most = 0
    for _, kind in events:
        running += 1 if kind == "start" else -1
        most = max(most, running)
    return most


async def test_one_tenant_gets_one_worker_at_a_time_and_others_are_not_starved(tmp_path) -> None:
    """Issue 12: one evaluation worker served every tenant. Now each namespace has at most
    `per_tenant` evaluations running while other tenants' still run beside them."""
    import asyncio

    body, store = job(tmp_path)
    other = {**body, "metadata": {**body["metadata"], "namespace": "tenant-b"}}
    own = CheckpointManager(store, checkpoint_prefix("tenant-a", "job"))
    copy = own.load(own.manifests()[0])
    CheckpointManager(store, checkpoint_prefix("tenant-b", "job")).save(copy, 1, "0.01")
    queries = generate(5, seed=2)

    async def run(bodies: list[dict[str, Any]], log_path) -> int:
        command = [sys.executable, "-c", RECORDING_WORKER, str(log_path)]
        evaluator = CheckpointEvaluator(store, NO_KUBE, command=command, workers=4, per_tenant=1)
        await asyncio.gather(*(evaluator.evaluate(b, None, queries) for b in bodies))
        return _most_at_once(log_path)

    assert await run([body] * 3, tmp_path / "one-tenant.log") == 1
    assert await run([body, other], tmp_path / "two-tenants.log") == 2
