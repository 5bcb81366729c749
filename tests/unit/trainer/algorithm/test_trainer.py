"""The in-memory training loop: records, failures, stopping, and bit-identical resume."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from agentcore_trainer.algorithm.grpo import AlgoConfig
from agentcore_trainer.algorithm.trainer import IterationReport, Trainer, TrainerState, train
from agentcore_trainer.datasets import generate
from agentcore_trainer.rewards import BUILTIN_ENTRY_POINT, RewardSpec

QUERIES = generate(60, seed=21)
CFG = AlgoConfig(beta=0.04, num_inner_iterations=2, epsilon_low=0.2, epsilon_high=0.28)
SMALL: dict[str, Any] = {"batch_size": 4, "group_size": 4, "max_steps": 5, "seed": 13}


def fails_on_search(trajectory: Mapping[str, Any], expected: Mapping[str, Any]) -> float:
    if "search" in trajectory["tools"]:
        raise RuntimeError("scorer unavailable")
    return 0.0


def _assert_states_equal(a: TrainerState, b: TrainerState) -> None:
    assert a.iteration == b.iteration and a.rng == b.rng and a.counters == b.counters
    for x, y in ((a.policy, b.policy), (a.reference, b.reference), (a.optimizer, b.optimizer)):
        assert x.keys() == y.keys()
        for k in x:
            assert np.array_equal(x[k], y[k]), k


def test_resume_from_bytes_is_bit_identical_to_uninterrupted_training() -> None:
    n, k = 6, 2
    full = train(QUERIES, CFG, n, **SMALL)
    first = train(QUERIES, CFG, k, **SMALL)
    blob = first.state.to_bytes()
    # A different seed argument must not matter: everything random comes from the saved state.
    rest = train(QUERIES, CFG, n, **{**SMALL, "seed": 999}, state=TrainerState.from_bytes(blob))
    _assert_states_equal(full.state, rest.state)
    assert full.history == first.history + rest.history
    assert full.state.to_bytes() == rest.state.to_bytes()


def test_state_bytes_round_trip() -> None:
    state = train(QUERIES, CFG, 1, **SMALL).state
    again = TrainerState.from_bytes(state.to_bytes())
    _assert_states_equal(state, again)
    blob = state.to_bytes()
    for corrupt in (b"not a checkpoint", blob[: len(blob) // 2], b""):
        with pytest.raises(ValueError):
            TrainerState.from_bytes(corrupt)


def test_iteration_report_has_metrics_and_trajectory_records() -> None:
    trainer = Trainer(QUERIES, CFG, **SMALL, run_id="job-1")
    report = trainer.step()
    assert report.iteration == 1 and len(report.trajectories) == 16
    for key in ("train_loss", "avg_reward", "reward_std", "kl", "clip_ratio", "frac_reward_zero_std",
                "trajectories_generated", "entropy", "input_tokens", "output_tokens"):  # fmt: skip
        assert key in report.metrics, key
    record = report.trajectories[0]
    assert set(record) >= {"trajectory_id", "query", "steps", "reward", "normalized_reward", "advantage",
                           "success", "execution_time_ms"}  # fmt: skip
    step = record["steps"][0]
    assert set(step) == {"state", "action", "result", "timestamp", "duration_ms"}
    assert set(step["action"]) == {"tool", "params"} and step["timestamp"].endswith("Z")
    ids = [r["trajectory_id"] for r in report.trajectories]
    assert len(set(ids)) == 16
    # Same run, same iteration → same ids (idempotent writes after a resume).
    assert ids == [
        r["trajectory_id"] for r in Trainer(QUERIES, CFG, **SMALL, run_id="job-1").step().trajectories
    ]
    # Advantages sum to ~0 within each group of a non-tied group.
    adv = np.array([r["advantage"] for r in report.trajectories]).reshape(4, 4)
    np.testing.assert_allclose(adv.sum(axis=1), 0.0, atol=1e-9)


def test_a_failing_reward_function_does_not_stop_training() -> None:
    spec = RewardSpec.from_entry_points(
        [BUILTIN_ENTRY_POINT, "tests.unit.trainer.algorithm.test_trainer:fails_on_search"]
    )
    trainer = Trainer(QUERIES, CFG, **SMALL, rewards=spec)
    failed = []
    for _ in range(3):
        report = trainer.step()
        failed += [r for r in report.trajectories if r["error"]]
    assert failed and trainer.counters["reward_failures"] == len(failed)
    assert all(
        r["advantage"] == 0.0 and not r["success"] and "scorer unavailable" in r["error"] for r in failed
    )
    assert np.isfinite(trainer.policy.parameters()).all()


def test_callback_can_stop_and_validation_is_reported() -> None:
    seen: list[IterationReport] = []

    def on_iteration(report: IterationReport) -> bool:
        seen.append(report)
        return report.iteration == 3

    result = train(QUERIES, CFG, 10, **SMALL, on_iteration=on_iteration, eval_queries=QUERIES[:10],
                   evaluation_interval=2)  # fmt: skip
    assert [r.iteration for r in seen] == [1, 2, 3] and result.state.iteration == 3
    assert "validation_accuracy" in result.history[1] and "validation_accuracy" not in result.history[0]


def test_validation_does_not_disturb_the_training_stream() -> None:
    plain = train(QUERIES, CFG, 3, **SMALL)
    validated = train(QUERIES, CFG, 3, **SMALL, eval_queries=QUERIES[:8], evaluation_interval=1)
    _assert_states_equal(plain.state, validated.state)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        Trainer([], CFG, **SMALL)
    with pytest.raises(ValueError):
        Trainer(QUERIES, CFG, **{**SMALL, "group_size": 0})


class _Recording(Trainer):
    """Keeps the policy before each update and the states it was computed on."""

    def _update(self, episodes: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        self.before, self.episodes = self.policy.copy(), episodes
        return super()._update(episodes, *args, **kwargs)


def _update_kl(trainer: _Recording) -> float:
    """Mean KL(πbefore ‖ πafter) over the update's states, computed here from the two policies."""
    encoded = trainer.policy.encode([o for ep in trainer.episodes for o in ep.observations])
    old, new = trainer.before.log_softmax(encoded), trainer.policy.log_softmax(encoded)
    return float((np.exp(old) * (old - new)).sum(axis=1).mean())


@pytest.mark.parametrize("inner", [1, 3])
def test_the_trust_region_keeps_every_update_within_max_kl_whatever_the_learning_rate(inner: int) -> None:
    config = AlgoConfig(learning_rate=1.0, num_inner_iterations=inner, max_kl=0.01)
    trainer = _Recording(QUERIES, config, **SMALL)
    for _ in range(4):
        report = trainer.step()
        assert 0.0 < _update_kl(trainer) <= 0.01 * (1 + 1e-9)
        assert report.metrics["trust_region_halvings"] > 0  # a step of 1.0 never fits as it is
    # Without the region the same step moves the policy far beyond it: the bound does the work.
    unbounded = _Recording(QUERIES, AlgoConfig(learning_rate=1.0, num_inner_iterations=inner, max_kl=None),
                           **SMALL)  # fmt: skip
    with np.errstate(all="ignore"):
        unbounded.step()
        assert not _update_kl(unbounded) <= 1.0  # > 1, or nan when the logits overflowed


def test_a_small_step_inside_the_trust_region_is_taken_whole() -> None:
    kept = Trainer(QUERIES, AlgoConfig(learning_rate=1e-6, max_kl=0.01), **SMALL)
    free = Trainer(QUERIES, AlgoConfig(learning_rate=1e-6, max_kl=None), **SMALL)
    assert kept.step().metrics["trust_region_halvings"] == 0.0
    free.step()
    np.testing.assert_array_equal(kept.policy.parameters(), free.policy.parameters())


def test_max_kl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_kl"):
        AlgoConfig(max_kl=0.0)
