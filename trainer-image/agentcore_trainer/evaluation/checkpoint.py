"""`training.evaluate`: a checkpoint's policy against the initial policy on held-out queries.

CPU-bound and synchronous. The API server does not call this in its own process: it runs
:mod:`agentcore_trainer.evaluation.worker` in a subprocess (user reward functions must not see the
server's credentials); standalone tools and tests call :func:`evaluate_checkpoint` directly.
"""

from __future__ import annotations

import time
from typing import Any

from agentcore.api.training import GRPOConfig
from agentcore.storage.checkpoints import CheckpointManager, checkpoint_prefix, pick_checkpoint
from agentcore.storage.objectstore import ObjectStore
from agentcore_trainer.runtime.backends import RunShape, evaluate_against_initial, make_backend
from agentcore_trainer.runtime.run import MAX_EVAL_QUERIES


def evaluate_state(
    state_blob: bytes, checkpoint_id: str, config: GRPOConfig, queries: list[dict[str, Any]]
) -> dict[str, Any]:
    """The spec's training.evaluate result body (without job_id) for one saved trainer state."""
    started = time.monotonic()
    backend = make_backend(RunShape(config, queries or [{"query": "-"}], seed=0), state_blob)
    body, _ = evaluate_against_initial(backend, queries[:MAX_EVAL_QUERIES])
    comparison = body["baseline_comparison"]
    return {
        "checkpoint_id": checkpoint_id,
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


def evaluate_checkpoint(
    store: ObjectStore,
    namespace: str,
    name: str,
    config: GRPOConfig,
    queries: list[dict[str, Any]],
    checkpoint_id: str | None = None,
) -> dict[str, Any]:
    """Pick the checkpoint (best by default) of a TrainingJob in `store` and evaluate it."""
    manager = CheckpointManager(store, checkpoint_prefix(namespace, name), config.checkpoint_retention)
    info = pick_checkpoint(manager, checkpoint_id)
    return evaluate_state(manager.load(info), info.id, config, queries)
