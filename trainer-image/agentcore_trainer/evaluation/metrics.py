"""Evaluation of a policy on held-out queries, and paired comparisons with baselines (the initial
policy, and for the built-in task the keyword heuristic in `policies/heuristic.py`).

Significance: both policies run on the same queries, so the data are paired (McNemar 1947,
Psychometrika 12:153).
`p_value` in `baseline_comparison` is the exact McNemar test on per-query success (two-sided
binomial test on the discordant pairs), because success is the headline metric; the sign-flip
permutation p-value on per-query rewards is reported beside it as `reward_p_value`.
`statistically_significant` = p_value < alpha and success_rate_improvement > 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from agentcore_trainer.environments.rollout import rollout
from agentcore_trainer.environments.tooluse import EnvFactory, ToolUseEnvironment
from agentcore_trainer.policies.builtin import Policy
from agentcore_trainer.rewards import RewardResult, RewardSpec, score_trajectory

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class EvaluationResult:
    success_rate: float
    avg_reward: float
    avg_steps: float
    tool_accuracy: float | None  # None when no query states a tool_sequence
    successes: NDArray[np.bool_]  # per query, in order: what the paired tests use
    rewards: FloatArray

    def metrics(self) -> dict[str, float | None]:
        """The spec's `metrics` object of training.evaluate."""
        return {
            "success_rate": self.success_rate,
            "avg_reward": self.avg_reward,
            "avg_steps": self.avg_steps,
            "tool_accuracy": self.tool_accuracy,
        }


def tool_accuracy(called: Sequence[str], required: Sequence[str]) -> float:
    """Share of positions where the called tool is the required one (extra or missing calls count)."""
    longest = max(len(called), len(required))
    hits = sum(a == b for a, b in zip(called, required, strict=False))
    return 1.0 if longest == 0 else hits / longest


def evaluate(
    policy: Policy,
    queries: Sequence[Mapping[str, Any]],
    env_factory: EnvFactory = ToolUseEnvironment,
    *,
    max_steps: int = 8,
    rewards: RewardSpec | None = None,
    gamma: float = 0.99,
    greedy: bool = True,
    seed: int = 0,
) -> EvaluationResult:
    """Run `policy` once per query (greedy with seeded random tie-breaks by default) and score it.

    Uses its own generator seeded with `seed`, so evaluating never disturbs a training run's RNG.
    """
    spec = rewards or RewardSpec.default()
    episodes = rollout(policy, env_factory, queries, max_steps, np.random.default_rng(seed), greedy=greedy)
    results = [score_trajectory(ep.view(), ep.expected_outcome, spec, gamma) for ep in episodes]
    return evaluation_result(episodes, results)


class Evaluated(Protocol):
    """An evaluated trajectory: a built-in episode or an LLM conversation."""

    steps: list[dict[str, Any]]

    @property
    def expected_outcome(self) -> Mapping[str, Any]: ...


def evaluation_result(episodes: Sequence[Evaluated], results: Sequence[RewardResult]) -> EvaluationResult:
    """Aggregate scored trajectories (one per query, in order) into an EvaluationResult."""
    successes = np.array([r.success for r in results], dtype=bool)
    reward_arr = np.array([r.reward for r in results], dtype=np.float64)
    accuracies = [_tool_accuracy(ep) for ep in episodes]
    known = [a for a in accuracies if a is not None]
    n = max(len(episodes), 1)
    return EvaluationResult(
        success_rate=float(successes.sum() / n),
        avg_reward=float(reward_arr.sum() / n),
        avg_steps=float(sum(len(ep.steps) for ep in episodes) / n),
        tool_accuracy=float(np.mean(known)) if known else None,
        successes=successes,
        rewards=reward_arr,
    )


def _tool_accuracy(episode: Evaluated) -> float | None:
    required = episode.expected_outcome.get("tool_sequence")
    if required is None:
        return None
    return tool_accuracy([s["action"]["tool"] for s in episode.steps], list(required))


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: P(X <= min(b, c)) · 2 for X ~ Binomial(b + c, ½), capped at 1.

    b, c are the discordant pair counts (baseline failed/trained succeeded and the reverse).
    Integer arithmetic, so there is no rounding until the final division.
    """
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


def sign_flip_p_value(diffs: FloatArray, n_resamples: int = 10_000, seed: int = 0) -> float:
    """Paired permutation test: p = (1 + #{|mean(s·d)| >= |mean(d)|}) / (R + 1) over random signs s."""
    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0 or not np.any(d):
        return 1.0
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    hits, chunk = 0, max(1, 2_000_000 // d.size)  # bound memory at ~16 MB per chunk
    for start in range(0, n_resamples, chunk):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(min(chunk, n_resamples - start), d.size))
        hits += int((np.abs(signs @ d) / d.size >= observed - 1e-12).sum())
    return (1 + hits) / (n_resamples + 1)


def bootstrap_ci(
    diffs: FloatArray, n_resamples: int = 2_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of mean(diffs)."""
    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_resamples, d.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def baseline_comparison(
    trained: EvaluationResult, baseline: EvaluationResult, alpha: float = 0.05, seed: int = 0
) -> dict[str, Any]:
    """The spec's `baseline_comparison` (plus the tests' details); see the module docstring."""
    if trained.successes.shape != baseline.successes.shape:
        raise ValueError("trained and baseline must be evaluated on the same queries")
    b = int((trained.successes & ~baseline.successes).sum())
    c = int((~trained.successes & baseline.successes).sum())
    p_value = mcnemar_exact(b, c)
    reward_diffs = trained.rewards - baseline.rewards
    success_improvement = trained.success_rate - baseline.success_rate
    ci = bootstrap_ci(trained.successes.astype(float) - baseline.successes.astype(float), seed=seed)
    return {
        "success_rate_improvement": success_improvement,
        "avg_reward_improvement": trained.avg_reward - baseline.avg_reward,
        "p_value": p_value,
        "statistically_significant": bool(p_value < alpha and success_improvement > 0),
        "test": "mcnemar_exact",
        "discordant_pairs": {"baseline_failed_trained_succeeded": b, "baseline_succeeded_trained_failed": c},
        "reward_p_value": sign_flip_p_value(reward_diffs, seed=seed),
        "success_rate_improvement_ci95": list(ci),
    }


def evaluate_against_baseline(
    policy: Policy,
    baseline_policy: Policy,
    queries: Sequence[Mapping[str, Any]],
    env_factory: EnvFactory = ToolUseEnvironment,
    *,
    max_steps: int = 8,
    rewards: RewardSpec | None = None,
    gamma: float = 0.99,
    seed: int = 0,
) -> dict[str, Any]:
    """Both policies on the same queries → the body of a training.evaluate result."""
    kwargs: dict[str, Any] = {"max_steps": max_steps, "rewards": rewards, "gamma": gamma, "seed": seed}
    trained = evaluate(policy, queries, env_factory, **kwargs)
    baseline = evaluate(baseline_policy, queries, env_factory, **kwargs)
    return comparison_body(trained, baseline, seed=seed)


def comparison_body(trained: EvaluationResult, baseline: EvaluationResult, seed: int = 0) -> dict[str, Any]:
    """The body of a training.evaluate result from two evaluations on the same queries."""
    return {
        "metrics": trained.metrics(),
        "baseline_metrics": baseline.metrics(),
        "baseline_comparison": baseline_comparison(trained, baseline, seed=seed),
        "queries_evaluated": int(trained.successes.size),
    }


def evaluate_against_baselines(
    policy: Policy,
    baselines: Mapping[str, Policy],
    queries: Sequence[Mapping[str, Any]],
    env_factory: EnvFactory = ToolUseEnvironment,
    *,
    max_steps: int = 8,
    rewards: RewardSpec | None = None,
    gamma: float = 0.99,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """`policy` against each named baseline (e.g. "initial", "keyword_heuristic") on the same queries.

    For every baseline: its metrics and `baseline_comparison(trained, baseline)`, i.e. the exact
    McNemar test on per-query success of the trained policy against that baseline (two-sided, at
    `alpha`), with the sign-flip permutation p-value on per-query rewards beside it.  Each
    comparison is its own test: for a claim about all of them at once, compare p with alpha / k.
    """
    kwargs: dict[str, Any] = {"max_steps": max_steps, "rewards": rewards, "gamma": gamma, "seed": seed}
    trained = evaluate(policy, queries, env_factory, **kwargs)
    compared: dict[str, Any] = {}
    for name, baseline_policy in baselines.items():
        baseline = evaluate(baseline_policy, queries, env_factory, **kwargs)
        compared[name] = {
            "metrics": baseline.metrics(),
            "comparison": baseline_comparison(trained, baseline, alpha=alpha, seed=seed),
        }
    return {"metrics": trained.metrics(), "baselines": compared, "queries_evaluated": len(queries)}
