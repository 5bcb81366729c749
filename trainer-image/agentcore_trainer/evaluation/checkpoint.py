"""`training.evaluate`: a TrainingJob's checkpoint (the best by default) against the initial policy
on held-out queries. CPU-bound and synchronous: callers run it in a process or thread pool."""

from __future__ import annotations

import time
from typing import Any

from agentcore.api.training import GRPOConfig
from agentcore.storage.checkpoints import CheckpointInfo, CheckpointManager
from agentcore.storage.objectstore import ObjectStore
from agentcore_trainer.algorithm.trainer import TrainerState
from agentcore_trainer.evaluation.metrics import evaluate_against_baseline
from agentcore_trainer.policies.builtin import builtin_policy
from agentcore_trainer.runtime.run import MAX_EVAL_QUERIES, reward_spec


class CheckpointNotFound(LookupError):
    pass


def checkpoint_prefix(namespace: str, name: str) -> str:
    """Where a TrainingJob's checkpoints live in the object store (the trainer writes them there)."""
    return f"checkpoints/{namespace}/{name}"


def evaluate_checkpoint(
    store: ObjectStore,
    namespace: str,
    name: str,
    config: GRPOConfig,
    queries: list[dict[str, Any]],
    checkpoint_id: str | None = None,
) -> dict[str, Any]:
    """The spec's training.evaluate result body (without job_id)."""
    manager = CheckpointManager(store, checkpoint_prefix(namespace, name), config.checkpoint_retention)
    info = _pick(manager, checkpoint_id)
    state = TrainerState.from_bytes(manager.load(info))
    policy, baseline = builtin_policy(), builtin_policy()
    policy.load_state_dict(state.policy)
    baseline.load_state_dict(state.reference)
    started = time.monotonic()
    body = evaluate_against_baseline(
        policy,
        baseline,
        queries[:MAX_EVAL_QUERIES],
        max_steps=config.max_steps_per_trajectory,
        rewards=reward_spec(config),
        gamma=config.gamma,
    )
    comparison = body["baseline_comparison"]
    return {
        "checkpoint_id": info.id,
        "metrics": body["metrics"],
        "baseline_comparison": {
            "success_rate_improvement": comparison["success_rate_improvement"],
            "avg_reward_improvement": comparison["avg_reward_improvement"],
            "p_value": comparison["p_value"],
            "statistically_significant": comparison["statistically_significant"],
        },
        "queries_evaluated": body["queries_evaluated"],
        "evaluation_duration_ms": int((time.monotonic() - started) * 1000),
    }


def _pick(manager: CheckpointManager, checkpoint_id: str | None) -> CheckpointInfo:
    if checkpoint_id:
        found = manager.find(checkpoint_id)
        if found is None:
            raise CheckpointNotFound(f"checkpoint {checkpoint_id!r} not found")
        return found
    manifests = manager.manifests()
    if not manifests:
        raise CheckpointNotFound("the job has no checkpoint yet")
    return manager.best() or manifests[-1]
