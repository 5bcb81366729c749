from __future__ import annotations

import pytest

from agentcore.api.training import GRPOConfig
from agentcore.storage.checkpoints import CheckpointManager, CheckpointNotFound, checkpoint_prefix
from agentcore.storage.objectstore import LocalObjectStore
from agentcore_trainer.algorithm.trainer import Trainer
from agentcore_trainer.datasets import generate
from agentcore_trainer.evaluation.checkpoint import evaluate_checkpoint
from agentcore_trainer.runtime.backends import algo_config


def test_evaluates_best_or_named_checkpoint(tmp_path):
    config = GRPOConfig(
        n_iterations=30,
        batch_size=16,
        n_trajectories_per_query=8,
        max_steps_per_trajectory=6,
        num_inner_iterations=4,
    )
    store = LocalObjectStore(tmp_path)
    manager = CheckpointManager(store, checkpoint_prefix("ns", "job"))
    trainer = Trainer(
        generate(200, seed=1), algo_config(config), batch_size=16, group_size=8, max_steps=6, seed=0
    )
    early = manager.save(trainer.state().to_bytes(), 0, "0", validation_score=0.0)
    for _ in range(30):
        trainer.step()
    late = manager.save(trainer.state().to_bytes(), 30, "0.5", validation_score=0.9)

    held_out = generate(60, seed=2)
    best = evaluate_checkpoint(store, "ns", "job", config, held_out)
    assert best["checkpoint_id"] == late.id
    assert best["queries_evaluated"] == 60
    assert set(best["metrics"]) == {"success_rate", "avg_reward", "avg_steps", "tool_accuracy"}
    assert best["baseline_comparison"]["success_rate_improvement"] > 0

    untrained = evaluate_checkpoint(store, "ns", "job", config, held_out, checkpoint_id=early.id)
    assert untrained["baseline_comparison"]["success_rate_improvement"] == 0  # the initial policy itself

    with pytest.raises(CheckpointNotFound):
        evaluate_checkpoint(store, "ns", "job", config, held_out, checkpoint_id="nope")
    with pytest.raises(CheckpointNotFound):
        evaluate_checkpoint(store, "ns", "other", config, held_out)
