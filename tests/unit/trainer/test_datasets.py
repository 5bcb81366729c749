"""Generated TrainingQuery sets: format, determinism, held-out seeds, split."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from agentcore_trainer.datasets import FAMILIES, generate, train_test_split


def test_format_matches_the_training_query_schema() -> None:
    queries = generate(60, seed=1)
    assert len(queries) == 60
    for q in queries:
        assert set(q) == {"query", "expected_outcome"}
        assert isinstance(q["query"], str) and q["query"]
        assert {"answer", "test_passed"} & set(q["expected_outcome"])
    json.dumps(queries)  # plain JSON


def test_deterministic_for_a_seed() -> None:
    assert generate(50, seed=7) == generate(50, seed=7)
    assert generate(10, seed=7) == generate(50, seed=7)[:10]


def test_different_seeds_give_held_out_sets_from_the_same_distribution() -> None:
    a, b = generate(300, seed=1), generate(300, seed=2)
    seen = {json.dumps(q, sort_keys=True) for q in a}
    overlap = sum(json.dumps(q, sort_keys=True) in seen for q in b)
    assert overlap < 0.05 * len(b)  # mostly unseen tasks (code tasks share phrasings, not tests)

    def families(qs: list[dict]) -> Counter:
        return Counter(tuple(q["expected_outcome"].get("tool_sequence", ["code"])) for q in qs)

    fa, fb = families(a), families(b)
    assert set(fa) == set(fb) and len(fa) == len(FAMILIES)
    assert all(abs(fa[k] - fb[k]) < 30 for k in fa)


def test_train_test_split() -> None:
    queries = generate(100, seed=3)
    train, test = train_test_split(queries, 0.2, seed=0)
    assert len(test) == 20 and len(train) == 80
    assert sorted(map(json.dumps, train + test)) == sorted(map(json.dumps, queries))
    assert train_test_split(queries, 0.2, seed=0) == (train, test)
    with pytest.raises(ValueError):
        train_test_split(queries, 1.5)
    assert generate(0, seed=1) == []
