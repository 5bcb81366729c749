"""Rewards: the built-in outcome matcher and user reward functions loaded by entry point.

A reward function has the signature `fn(trajectory, expected_outcome) -> float | Sequence[float]`
(ground truth included, as TRL users asked for).  `trajectory` is the dict that `trajectory_view`
builds: query, steps (state, action, result, duration_ms), tools, final_answer, test_passed,
execution_time_ms, step_rewards.  A sequence is read as per-step rewards and discounted with gamma.

The built-in matcher (`outcome_reward`, entry point `agentcore_trainer.rewards:outcome_reward`)
understands these `expected_outcome` keys; other keys (e.g. `tests`) are ignored:

- `answer`: exact match of the submitted answer (whitespace/case-insensitive; numbers by value) → 0/1
- `tool_sequence`: LCS(called, required) / max(len(called), len(required)) → 1 only when equal,
  partial credit for the right tools in the right order, less for detours
- `test_passed`: the submitted code's test result equals the expected boolean → 0/1
- `execution_time_ms`: a bound; a multiplier min(1, bound / actual) on the score above, so speed
  only pays once the task is done (or the whole score when it is the only key)

Success means every present criterion is fully met (scores 1, time within the bound).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RewardFn = Callable[[Mapping[str, Any], Mapping[str, Any]], float | Sequence[float]]
BUILTIN_ENTRY_POINT = "agentcore_trainer.rewards:outcome_reward"


@dataclass(frozen=True)
class OutcomeMatch:
    scores: dict[str, float]
    time_factor: float
    has_time_bound: bool
    success: bool

    @property
    def reward(self) -> float:
        if self.scores:
            return float(sum(self.scores.values()) / len(self.scores)) * self.time_factor
        return self.time_factor if self.has_time_bound else 0.0


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Longest common subsequence, O(len(a)·len(b)) with one row of memory."""
    row = [0] * (len(b) + 1)
    for x in a:
        prev_diag = 0
        for j, y in enumerate(b, start=1):
            prev_diag, row[j] = row[j], prev_diag + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def sequence_score(called: Sequence[str], required: Sequence[str]) -> float:
    longest = max(len(called), len(required))
    return 1.0 if longest == 0 else lcs_length(called, required) / longest


def answers_match(submitted: Any, expected: Any) -> bool:
    if submitted is None:
        return False
    a, b = str(submitted).strip().casefold(), str(expected).strip().casefold()
    if a == b:
        return True
    try:  # "391" and "391.0" are the same answer
        return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=1e-9)
    except ValueError:
        return False


def match_outcome(trajectory: Mapping[str, Any], expected: Mapping[str, Any]) -> OutcomeMatch:
    scores: dict[str, float] = {}
    if "answer" in expected:
        scores["answer"] = float(answers_match(trajectory.get("final_answer"), expected["answer"]))
    if "tool_sequence" in expected:
        scores["tool_sequence"] = sequence_score(trajectory.get("tools", []), expected["tool_sequence"])
    if "test_passed" in expected:
        scores["test_passed"] = float(bool(trajectory.get("test_passed")) == bool(expected["test_passed"]))
    time_factor, has_time = 1.0, "execution_time_ms" in expected
    if has_time:
        actual = float(trajectory.get("execution_time_ms", 0.0))
        bound = float(expected["execution_time_ms"])
        time_factor = 1.0 if actual <= bound else bound / actual
    success = bool(scores or has_time) and all(s == 1.0 for s in scores.values()) and time_factor == 1.0
    return OutcomeMatch(scores, time_factor, has_time, success)


def outcome_reward(trajectory: Mapping[str, Any], expected_outcome: Mapping[str, Any]) -> float:
    """The built-in reward in [0, 1]; see the module docstring."""
    return match_outcome(trajectory, expected_outcome).reward


def load_entry_point(entry_point: str) -> RewardFn:
    """Import `package.module:function` (the attribute may be dotted, e.g. `mod:Class.method`)."""
    module_name, sep, attr = entry_point.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"reward function {entry_point!r} is not of the form 'package.module:function'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"reward function {entry_point!r} is not callable")
    fn: RewardFn = obj
    return fn


def discounted_sum(values: Sequence[float], gamma: float) -> float:
    """sum_t gamma^t r_t: per-step rewards count less the later they come."""
    return float(sum(r * gamma**t for t, r in enumerate(values)))


@dataclass(frozen=True)
class RewardResult:
    reward: float
    success: bool
    components: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class RewardSpec:
    """Named reward functions with weights: r = Σ w_k·R_k + discounted environment step rewards."""

    functions: tuple[tuple[str, RewardFn], ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.functions) != len(self.weights):
            raise ValueError("reward_weights must have one weight per reward function")

    @classmethod
    def from_entry_points(
        cls, entry_points: Sequence[str] = (), weights: Sequence[float] | None = None
    ) -> RewardSpec:
        names = list(entry_points) or [BUILTIN_ENTRY_POINT]
        ws = [1.0] * len(names) if weights is None else [float(w) for w in weights]
        return cls(tuple((n, load_entry_point(n)) for n in names), tuple(ws))

    @classmethod
    def default(cls) -> RewardSpec:
        return cls((("outcome", outcome_reward),), (1.0,))


def score_trajectory(
    trajectory: Mapping[str, Any], expected: Mapping[str, Any], spec: RewardSpec, gamma: float
) -> RewardResult:
    """Reward one trajectory; an exception or a non-finite value marks it failed, never crashes."""
    success = match_outcome(trajectory, expected).success
    components: dict[str, float] = {}
    for name, fn in spec.functions:
        try:
            value = _as_scalar(fn(trajectory, expected), gamma)
        except Exception as exc:  # a user function may raise anything; the job must go on
            return RewardResult(0.0, False, components, f"{name}: {type(exc).__name__}: {exc}")
        components[name] = value
    env_return = discounted_sum(trajectory.get("step_rewards", []), gamma)
    total = sum(w * components[name] for (name, _), w in zip(spec.functions, spec.weights, strict=True))
    return RewardResult(float(total + env_return), success, components)


def _as_scalar(value: float | Sequence[float], gamma: float) -> float:
    scalar = discounted_sum([float(v) for v in value], gamma) if isinstance(value, Sequence) else float(value)
    if not math.isfinite(scalar):
        raise ValueError(f"reward is not finite: {scalar}")
    return scalar
