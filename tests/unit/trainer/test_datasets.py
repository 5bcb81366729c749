"""Generated TrainingQuery sets: format, determinism, the duplicate-free held-out split, split."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

from agentcore_trainer.datasets import (
    FAMILIES,
    SPLIT_SPECS,
    generate,
    jaccard,
    masked_words,
    near_duplicates,
    train_test_split,
    trigrams,
    write_dataset,
)
from agentcore_trainer.environments.tooluse import ACTIONS, ToolUseEnvironment, find_entity
from agentcore_trainer.policies.heuristic import plan


@pytest.mark.parametrize("split", ["train", "held_out"])
def test_format_matches_the_training_query_schema(split: str) -> None:
    queries = generate(60, seed=1, split=split)  # type: ignore[arg-type]
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


TRAIN, HELD_OUT = generate(400, seed=1), generate(200, seed=2, split="held_out")


def test_held_out_shares_no_exact_or_near_duplicate_text_with_training() -> None:
    train_texts = {q["query"] for q in TRAIN}
    assert not [q for q in HELD_OUT if q["query"] in train_texts]  # no exact duplicate
    # Near-duplicate: equal once numbers and entities are masked, or 3-gram Jaccard >= 0.8.
    train_masked = {masked_words(t) for t in train_texts}
    assert not [q for q in HELD_OUT if masked_words(q["query"]) in train_masked]
    worst = max(jaccard(trigrams(h["query"]), trigrams(t)) for h in HELD_OUT for t in train_texts)
    assert worst < 0.8
    assert near_duplicates(TRAIN, HELD_OUT) == []
    # The check itself finds what it should: another seed of the training split is full of them.
    assert len(near_duplicates(TRAIN, generate(50, seed=9))) > 30


def test_held_out_subjects_numbers_and_chain_combinations_are_unseen() -> None:
    def entities(qs: list[dict]) -> set[str | None]:
        return {find_entity(q["query"]) for q in qs} - {None}

    assert entities(HELD_OUT) and not entities(HELD_OUT) & entities(TRAIN)
    numbers = {w for q in TRAIN for w in q["query"].split() if w.strip(".?,;:").isdigit()}
    held_numbers = {w for q in HELD_OUT for w in q["query"].split() if w.strip(".?,;:").isdigit()}
    assert held_numbers and not {w.strip(".?,;:") for w in held_numbers} & {w.strip(".?,;:") for w in numbers}

    def chains(qs: list[dict]) -> set[tuple[int, ...]]:
        return {plan(q["query"]) for q in qs if len(q["expected_outcome"].get("tool_sequence", [])) == 3}

    assert chains(HELD_OUT) and not chains(HELD_OUT) & chains(TRAIN)
    train_templates = {t for f in vars(SPLIT_SPECS["train"]).values() if isinstance(f, tuple) for t in f}
    held_templates = {t for f in vars(SPLIT_SPECS["held_out"]).values() if isinstance(f, tuple) for t in f}
    assert not train_templates & held_templates


def _solved(query: dict, actions: tuple[int, ...]) -> bool:
    env = ToolUseEnvironment()
    env.reset(query)
    result: dict = {}
    for action in actions:
        result = env.step(action).result
    expected = query["expected_outcome"]
    if "answer" in expected:
        return result.get("answer") is not None and str(result["answer"]) == str(expected["answer"])
    return result.get("test_passed") is True


def test_the_tools_solve_every_held_out_query() -> None:
    """Some choice of arguments along the required tools gives the expected outcome (new entities
    included: the tools know them)."""
    for q in HELD_OUT:
        tools = q["expected_outcome"].get("tool_sequence", ["code_runner", "answer"])
        options = [[i for i, (t, _) in enumerate(ACTIONS) if t == tool] for tool in tools]
        assert any(_solved(q, combo) for combo in itertools.product(*options)), q["query"]


def test_write_dataset_splits(tmp_path) -> None:
    out, held = tmp_path / "train.json", tmp_path / "eval.json"
    write_dataset(50, 3, str(out), str(held), 0.2)
    train, evaluation = json.loads(out.read_text()), json.loads(held.read_text())
    assert train == generate(50, 3) and evaluation == generate(10, 3, "held_out")
    write_dataset(5, 3, str(out), split="held_out")
    assert json.loads(out.read_text()) == generate(5, 3, "held_out")
    with pytest.raises(ValueError):
        generate(3, 1, split="test")  # type: ignore[arg-type]
