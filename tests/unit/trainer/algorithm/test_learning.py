"""THE learning test: GRPO on the built-in policy beats the initial policy on held-out queries."""

from __future__ import annotations

import time

from agentcore_trainer.algorithm.grpo import AlgoConfig
from agentcore_trainer.algorithm.trainer import train
from agentcore_trainer.datasets import generate
from agentcore_trainer.evaluation.metrics import evaluate_against_baseline
from agentcore_trainer.policies.builtin import builtin_policy

MAX_STEPS = 6


def test_trained_policy_beats_the_initial_policy_on_held_out_queries() -> None:
    train_set, held_out = generate(400, seed=1), generate(200, seed=2)
    # The spec's defaults (learning_rate 1e-4, batch 16, 8 trajectories per query), plus μ = 4
    # inner iterations so each sampled batch is used more than once (clipping then matters).
    config = AlgoConfig(learning_rate=1e-4, num_inner_iterations=4, beta=0.04)
    started = time.process_time()
    result = train(
        train_set, config, n_iterations=200, batch_size=16, group_size=8, max_steps=MAX_STEPS, seed=0
    )
    body = evaluate_against_baseline(result.policy, builtin_policy(), held_out, max_steps=MAX_STEPS, seed=0)
    cpu_seconds = time.process_time() - started
    trained, baseline, cmp = body["metrics"], body["baseline_metrics"], body["baseline_comparison"]
    print(  # shown with -s; the numbers the report quotes
        f"\ninitial success {baseline['success_rate']:.3f} → trained {trained['success_rate']:.3f}; "
        f"improvement {cmp['success_rate_improvement']:.3f}, McNemar p = {cmp['p_value']:.3g}, "
        f"reward p = {cmp['reward_p_value']:.3g}, CPU {cpu_seconds:.1f} s"
    )
    assert cmp["success_rate_improvement"] >= 0.3
    assert cmp["p_value"] < 0.01 and cmp["statistically_significant"]
    assert trained["avg_reward"] > baseline["avg_reward"]
