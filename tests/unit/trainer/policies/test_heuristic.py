"""The keyword heuristic baseline: its plans, and that it runs as a Policy."""

from __future__ import annotations

import numpy as np

from agentcore_trainer.datasets import generate
from agentcore_trainer.environments.tooluse import ACTION_INDEX, Observation
from agentcore_trainer.evaluation.metrics import evaluate
from agentcore_trainer.policies.builtin import Policy
from agentcore_trainer.policies.heuristic import KeywordHeuristicPolicy, plan


def test_plans_follow_the_keywords() -> None:
    a = ACTION_INDEX
    assert plan("What is 3 times 4?") == (a["calculator", "multiply"], a["answer", "submit"])
    assert plan("Look up the share price of Acme, then add 3 to it.") == (
        a["search", "stocks"], a["calculator", "add"], a["answer", "submit"],
    )  # fmt: skip
    assert plan("Write a function that sums a list of integers.") == (
        a["code_runner", "sum"], a["answer", "submit"],
    )  # fmt: skip
    assert plan("Hello there") == (a["answer", "submit"],)


def test_is_a_deterministic_parameter_free_policy() -> None:
    policy = KeywordHeuristicPolicy()
    assert isinstance(policy, Policy)
    obs = [
        Observation("What is 3 plus 4?"),
        Observation("What is 3 plus 4?", (ACTION_INDEX["calculator", "add"],)),
    ]
    enc = policy.encode(obs)
    rng = np.random.default_rng(0)
    assert policy.greedy(enc, rng).tolist() == [
        ACTION_INDEX["calculator", "add"],
        ACTION_INDEX["answer", "submit"],
    ]
    assert policy.sample(enc, rng)[0].tolist() == policy.greedy(enc, rng).tolist()
    assert policy.log_probs(enc, enc).tolist() == [0.0, 0.0]
    assert policy.parameters().size == 0 and policy.state_dict() == {}


def test_solves_most_queries_of_both_splits() -> None:
    for split in ("train", "held_out"):
        result = evaluate(KeywordHeuristicPolicy(), generate(120, seed=5, split=split), max_steps=6)
        assert result.success_rate > 0.9
