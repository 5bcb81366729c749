"""Evaluation metrics and the paired significance tests."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agentcore_trainer.datasets import generate
from agentcore_trainer.environments.tooluse import ACTION_INDEX
from agentcore_trainer.evaluation.metrics import (
    EvaluationResult,
    baseline_comparison,
    bootstrap_ci,
    evaluate,
    evaluate_against_baseline,
    evaluate_against_baselines,
    mcnemar_exact,
    sign_flip_p_value,
    tool_accuracy,
)
from agentcore_trainer.policies.builtin import builtin_policy
from agentcore_trainer.policies.heuristic import KeywordHeuristicPolicy


def test_mcnemar_exact_against_hand_computed_values() -> None:
    # b=10, c=2: n=12, P(X<=2) = (1 + 12 + 66)/4096, two-sided → 158/4096
    assert mcnemar_exact(10, 2) == pytest.approx(158 / 4096, rel=1e-15)
    assert mcnemar_exact(2, 10) == mcnemar_exact(10, 2)
    assert mcnemar_exact(5, 0) == pytest.approx(2 / 32)
    assert mcnemar_exact(3, 3) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(1500, 10) < 1e-300  # huge n: exact integers, no overflow


def test_sign_flip_permutation_p_value() -> None:
    # All 10 differences positive and equal: the exact p is 2/2**10.
    p = sign_flip_p_value(np.ones(10), n_resamples=20_000, seed=1)
    assert p == pytest.approx(2 / 1024, abs=0.001)
    assert sign_flip_p_value(np.zeros(10)) == 1.0
    assert sign_flip_p_value(np.array([1.0, -1.0] * 20), seed=0) > 0.5


def test_bootstrap_ci_brackets_the_mean() -> None:
    d = np.random.default_rng(0).normal(0.3, 1.0, size=400)
    lo, hi = bootstrap_ci(d, seed=0)
    assert lo < d.mean() < hi and hi - lo < 0.3


def _result(successes: list[bool], rewards: list[float]) -> EvaluationResult:
    s, r = np.array(successes), np.array(rewards)
    return EvaluationResult(float(s.mean()), float(r.mean()), 2.0, None, s, r)


def test_baseline_comparison_reports_mcnemar_and_significance() -> None:
    baseline = _result([False] * 10 + [True] * 2 + [False] * 8, [0.0] * 20)
    trained = _result([True] * 10 + [False] * 2 + [False] * 8, [1.0] * 10 + [0.0] * 10)
    cmp = baseline_comparison(trained, baseline)
    assert cmp["p_value"] == pytest.approx(158 / 4096)
    assert cmp["success_rate_improvement"] == pytest.approx(0.4)
    assert cmp["statistically_significant"] is True and cmp["test"] == "mcnemar_exact"
    worse = baseline_comparison(baseline, trained)
    assert worse["success_rate_improvement"] < 0 and worse["statistically_significant"] is False
    with pytest.raises(ValueError):
        baseline_comparison(_result([True], [1.0]), baseline)


def test_tool_accuracy() -> None:
    assert tool_accuracy(["search", "answer"], ["search", "answer"]) == 1.0
    assert tool_accuracy(["calculator", "answer"], ["search", "answer"]) == 0.5
    assert tool_accuracy(["search", "calculator", "answer"], ["search", "answer"]) == pytest.approx(1 / 3)


def test_evaluate_shapes_and_spec_fields() -> None:
    queries = generate(40, seed=4)
    policy = builtin_policy()
    policy.weights[:, ACTION_INDEX[("answer", "submit")]] = 1.0  # always answer immediately
    result = evaluate(policy, queries, max_steps=4)
    assert result.avg_steps == 1.0 and result.success_rate == 0.0
    assert result.successes.shape == (40,) and result.tool_accuracy is not None
    assert set(result.metrics()) == {"success_rate", "avg_reward", "avg_steps", "tool_accuracy"}
    body = evaluate_against_baseline(policy, builtin_policy(), queries, max_steps=4)
    assert body["queries_evaluated"] == 40
    assert set(body["baseline_comparison"]) >= {
        "success_rate_improvement", "avg_reward_improvement", "p_value", "statistically_significant",
    }  # fmt: skip
    assert math.isfinite(body["baseline_comparison"]["p_value"])


def test_evaluation_is_deterministic_for_a_seed() -> None:
    queries = generate(30, seed=6)
    a = evaluate(builtin_policy(), queries, seed=3)
    b = evaluate(builtin_policy(), queries, seed=3)
    assert np.array_equal(a.rewards, b.rewards) and a.avg_steps == b.avg_steps


def test_evaluate_against_each_baseline() -> None:
    queries = generate(40, seed=4, split="held_out")
    baselines = {"initial": builtin_policy(), "keyword_heuristic": KeywordHeuristicPolicy()}
    body = evaluate_against_baselines(KeywordHeuristicPolicy(), baselines, queries, max_steps=6)
    assert body["queries_evaluated"] == 40 and set(body["baselines"]) == set(baselines)
    against_initial = body["baselines"]["initial"]["comparison"]
    assert against_initial["test"] == "mcnemar_exact" and against_initial["statistically_significant"]
    # Against itself: no discordant pair, so no evidence either way.
    itself = body["baselines"]["keyword_heuristic"]["comparison"]
    assert itself["p_value"] == 1.0 and itself["success_rate_improvement"] == 0.0
