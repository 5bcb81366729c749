"""Outcome matcher, user reward functions by entry point, failures and discounting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from agentcore_trainer.rewards import (
    BUILTIN_ENTRY_POINT,
    RewardSpec,
    answers_match,
    discounted_sum,
    lcs_length,
    load_entry_point,
    match_outcome,
    outcome_reward,
    score_trajectory,
    sequence_score,
)

HERE = "tests.unit.trainer.test_rewards"


def length_penalty(trajectory: Mapping[str, Any], expected: Mapping[str, Any]) -> float:
    return -0.1 * len(trajectory["tools"])


def per_step(trajectory: Mapping[str, Any], expected: Mapping[str, Any]) -> list[float]:
    return [1.0] * len(trajectory["tools"])


def broken(trajectory: Mapping[str, Any], expected: Mapping[str, Any]) -> float:
    raise KeyError("ground_truth")


def not_finite(trajectory: Mapping[str, Any], expected: Mapping[str, Any]) -> float:
    return float("nan")


class Scorers:
    @staticmethod
    def constant(trajectory: Mapping[str, Any], expected: Mapping[str, Any]) -> float:
        return 0.5


def _traj(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"tools": [], "final_answer": None, "test_passed": None, "execution_time_ms": 0.0}
    return {**base, **kw}


def test_lcs_and_sequence_score() -> None:
    assert lcs_length("abcbdab", "bdcaba") == 4
    assert sequence_score(["search", "answer"], ["search", "answer"]) == 1.0
    assert sequence_score(["answer"], ["search", "answer"]) == 0.5
    assert sequence_score(["file_reader", "search", "answer"], ["search", "answer"]) == pytest.approx(2 / 3)
    assert sequence_score([], []) == 1.0


def test_answer_matching() -> None:
    assert answers_match(" 391 ", "391") and answers_match("391.0", "391") and answers_match("Yes", "yes")
    assert not answers_match(None, "391") and not answers_match("390", "391") and not answers_match("a", "b")


def test_exact_answer_and_tool_sequence() -> None:
    expected = {"answer": "48", "tool_sequence": ["calculator", "answer"]}
    good = match_outcome(_traj(tools=["calculator", "answer"], final_answer="48"), expected)
    assert good.success and good.reward == 1.0
    wrong_arg = match_outcome(_traj(tools=["calculator", "answer"], final_answer="16"), expected)
    assert not wrong_arg.success and wrong_arg.reward == 0.5
    detour = match_outcome(_traj(tools=["search", "calculator", "answer"], final_answer="48"), expected)
    assert not detour.success and detour.reward == pytest.approx((1 + 2 / 3) / 2)


def test_tests_and_time_bound_give_partial_credit() -> None:
    expected = {"test_passed": True, "execution_time_ms": 100, "tests": [{"input": [1], "output": [1]}]}
    fast = match_outcome(_traj(test_passed=True, execution_time_ms=61), expected)
    assert fast.success and fast.reward == 1.0
    slow = match_outcome(_traj(test_passed=True, execution_time_ms=200), expected)
    assert not slow.success and slow.reward == pytest.approx(0.5)
    failing = match_outcome(_traj(test_passed=False, execution_time_ms=61), expected)
    assert not failing.success and failing.reward == 0.0
    only_time = match_outcome(_traj(execution_time_ms=400), {"execution_time_ms": 100})
    assert only_time.reward == pytest.approx(0.25) and not only_time.success


def test_no_known_criterion_is_no_success() -> None:
    m = match_outcome(_traj(), {"something_else": 1})
    assert not m.success and m.reward == 0.0


def test_entry_points_load_and_validate() -> None:
    assert load_entry_point(BUILTIN_ENTRY_POINT) is outcome_reward
    assert load_entry_point(f"{HERE}:Scorers.constant")({}, {}) == 0.5
    for bad in ("no_colon", "mod:", ":fn"):
        with pytest.raises(ValueError):
            load_entry_point(bad)
    with pytest.raises(ModuleNotFoundError):
        load_entry_point("no.such.module:fn")


def test_weighted_sum_and_discounting() -> None:
    spec = RewardSpec.from_entry_points([BUILTIN_ENTRY_POINT, f"{HERE}:length_penalty", f"{HERE}:per_step"],
                                        [2.0, 1.0, 0.5])  # fmt: skip
    traj = _traj(tools=["calculator", "answer"], final_answer="48", step_rewards=[0.0, -0.05])
    result = score_trajectory(
        traj, {"answer": "48", "tool_sequence": ["calculator", "answer"]}, spec, gamma=0.9
    )
    expected = 2.0 * 1.0 + 1.0 * (-0.2) + 0.5 * (1.0 + 0.9) + (0.0 - 0.05 * 0.9)
    assert result.reward == pytest.approx(expected) and result.success and not result.failed
    assert discounted_sum([1.0, 1.0, 1.0], 0.5) == 1.75


def test_a_raising_reward_function_marks_the_trajectory_failed() -> None:
    for fn in ("broken", "not_finite"):
        spec = RewardSpec.from_entry_points([BUILTIN_ENTRY_POINT, f"{HERE}:{fn}"])
        result = score_trajectory(_traj(final_answer="1"), {"answer": "1"}, spec, gamma=1.0)
        assert result.failed and not result.success and result.reward == 0.0
        assert result.error is not None and fn in result.error


def test_weights_must_match_functions() -> None:
    with pytest.raises(ValueError):
        RewardSpec.from_entry_points([BUILTIN_ENTRY_POINT], [1.0, 2.0])
