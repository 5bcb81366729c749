"""The built-in tool-use environment and the generated tasks fit together."""

from __future__ import annotations

import itertools

import pytest

from agentcore_trainer.datasets import generate
from agentcore_trainer.environments.rollout import Episode
from agentcore_trainer.environments.tooluse import (
    ACTION_INDEX,
    ACTIONS,
    AgentEnvironment,
    ToolUseEnvironment,
    world_value,
)
from agentcore_trainer.rewards import match_outcome

ANSWER = ACTION_INDEX[("answer", "submit")]


def _play(query: dict, actions: list[int]) -> Episode:
    env = ToolUseEnvironment()
    episode = Episode(query)
    obs = env.reset(query)
    for a in actions:
        t = env.step(a)
        episode.observations.append(obs)
        episode.actions.append(a)
        episode.transitions.append(t)
        episode.steps.append(
            {"action": env.describe_action(a), "result": t.result, "duration_ms": t.duration_ms}
        )
        obs = t.observation
        if t.done:
            break
    return episode


def _solvable(query: dict) -> bool:
    tools = [a for a in range(len(ACTIONS)) if a != ANSWER]
    for length in (1, 2):
        for prefix in itertools.product(tools, repeat=length):
            ep = _play(query, [*prefix, ANSWER])
            if match_outcome(ep.view(), query["expected_outcome"]).success:
                return True
    return False


def test_protocol_and_action_space() -> None:
    env = ToolUseEnvironment()
    assert isinstance(env, AgentEnvironment)
    assert env.n_actions == len(ACTIONS) == 17
    assert env.describe_action(ACTION_INDEX[("calculator", "multiply")]) == {
        "tool": "calculator",
        "params": {"operation": "multiply"},
    }


def test_calculator_uses_query_numbers_and_answer_ends_the_episode() -> None:
    query = {"query": "What is 12 times 4?", "expected_outcome": {"answer": "48"}}
    ep = _play(query, [ACTION_INDEX[("calculator", "multiply")], ANSWER])
    assert ep.transitions[0].result["value"] == "48"
    assert ep.transitions[-1].done and ep.view()["final_answer"] == "48"
    assert ep.execution_time_ms == 6.0
    assert all(t.input_tokens > 0 and t.output_tokens > 0 for t in ep.transitions)


def test_chained_lookup_then_calculation() -> None:
    query = {"query": "Look up the stock price of Acme, then add 3 to it.", "expected_outcome": {}}
    ep = _play(query, [ACTION_INDEX[("search", "stocks")], ACTION_INDEX[("calculator", "add")], ANSWER])
    assert ep.view()["final_answer"] == str(world_value("search", "stocks", "Acme") + 3)


def test_failing_calls_return_errors_and_a_step_penalty() -> None:
    env = ToolUseEnvironment()
    env.reset({"query": "Write a function that sorts a list of integers."})
    t = env.step(ACTION_INDEX[("search", "weather")])
    assert "error" in t.result and t.reward < 0 and not t.done
    assert env.step(ANSWER).done
    with pytest.raises(RuntimeError):
        env.step(ANSWER)


def test_code_runner_checks_the_hidden_tests() -> None:
    query = generate(30, seed=5)
    code = next(q for q in query if "tests" in q["expected_outcome"])
    results = {p: _play(code, [ACTION_INDEX[("code_runner", p)], ANSWER]) for p in ("sort", "reverse", "sum")}
    passed = [p for p, ep in results.items() if ep.view()["test_passed"]]
    assert len(passed) <= 1


def test_every_generated_query_is_solvable() -> None:
    queries = generate(36, seed=11)
    assert all(_solvable(q) for q in queries)


def test_environment_is_deterministic() -> None:
    q = generate(1, seed=3)[0]
    actions = [1, 5, 9, ANSWER]
    assert [t.result for t in _play(q, actions).transitions] == [
        t.result for t in _play(q, actions).transitions
    ]
