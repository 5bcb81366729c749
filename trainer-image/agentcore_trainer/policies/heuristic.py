"""A keyword heuristic for the built-in tool-use task: the rule-based baseline a developer would write.

It reads the query once, plans a tool sequence from keyword tables and replays that plan step by
step.  The tables name each tool argument and its obvious synonyms, as one would write them from
the tool descriptions; they are not learned and not taken from the generator's phrase lists, so the
heuristic can miss a phrasing (e.g. "spreadsheet export") that a learned policy picks up from data.
Rules, in order: a request for code → code_runner(program); otherwise the first search topic or file
the query names (if any), then a calculator operation if one is named, then answer.

It implements the `Policy` protocol so `evaluate` can run it like any policy; it has no parameters
and is deterministic (log-probability 0 for its action, -inf for every other).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from agentcore_trainer.environments.tooluse import ACTION_INDEX, ACTIONS, Observation
from agentcore_trainer.policies.builtin import FloatArray, IntArray

_CODE_WORDS = frozenset({"function", "code", "program", "implement", "routine", "script"})
_PROGRAMS: dict[str, frozenset[str]] = {
    "sort": frozenset({"sort", "sorts", "sorted", "orders", "smallest", "ascending"}),
    "reverse": frozenset({"reverse", "reverses", "reversed", "flip", "flips", "backwards"}),
    "deduplicate": frozenset({"deduplicate", "deduplicates", "duplicates", "unique", "distinct"}),
    "sum": frozenset({"sum", "sums", "total", "totals", "adds"}),
}
_LOOKUPS: dict[tuple[str, str], frozenset[str]] = {
    ("search", "weather"): frozenset({"weather", "forecast", "rain", "temperature"}),
    ("search", "stocks"): frozenset({"stock", "stocks", "share", "shares", "market", "price"}),
    ("search", "sports"): frozenset({"sports", "sport", "match", "game", "score", "league"}),
    ("search", "science"): frozenset({"science", "scientific", "research", "study", "lab"}),
    ("file_reader", "config.yaml"): frozenset({"config", "yaml", "settings", "configuration"}),
    ("file_reader", "data.csv"): frozenset({"csv", "data", "table"}),
    ("file_reader", "notes.txt"): frozenset({"notes", "note", "txt", "text"}),
    ("file_reader", "users.json"): frozenset({"users", "user", "accounts", "json"}),
}
_OPERATIONS: dict[str, frozenset[str]] = {
    "add": frozenset({"plus", "add", "added", "sum", "increase"}),
    "subtract": frozenset({"minus", "subtract", "difference", "less", "decrease"}),
    "multiply": frozenset({"times", "multiply", "multiplied", "product", "scale", "double"}),
    "divide": frozenset({"divide", "divided", "quotient", "over", "per"}),
}
_ANSWER = ACTION_INDEX[("answer", "submit")]
_NEG_INF = float("-inf")


def _first(words: set[str], table: Mapping[Any, frozenset[str]]) -> Any | None:
    return next((key for key, keywords in table.items() if words & keywords), None)


def plan(query: str) -> tuple[int, ...]:
    """The action sequence the rules choose for `query` (always ending with answer)."""
    words = set(re.findall(r"[a-z]+", query.lower()))
    if words & _CODE_WORDS:
        program = _first(words, _PROGRAMS) or "sort"
        return (ACTION_INDEX[("code_runner", program)], _ANSWER)
    steps: list[int] = []
    lookup = _first(words, _LOOKUPS)
    if lookup is not None:
        steps.append(ACTION_INDEX[lookup])
    operation = _first(words, _OPERATIONS)
    if operation is not None:
        steps.append(ACTION_INDEX[("calculator", operation)])
    return (*steps, _ANSWER)


class KeywordHeuristicPolicy:
    """The keyword heuristic as a (parameter-free, deterministic) `Policy`; see the module docstring."""

    n_actions: int = len(ACTIONS)

    def __init__(self) -> None:
        self._plans: dict[str, tuple[int, ...]] = {}

    def _action(self, observation: Observation) -> int:
        steps = self._plans.get(observation.query)
        if steps is None:
            steps = self._plans[observation.query] = plan(observation.query)
        return steps[min(observation.step, len(steps) - 1)]

    def parameters(self) -> FloatArray:
        return np.zeros(0)

    def encode(self, observations: Sequence[Observation]) -> IntArray:
        return np.array([self._action(o) for o in observations], dtype=np.int64)

    def log_probs(self, encoded: IntArray, actions: IntArray) -> FloatArray:
        return np.where(np.asarray(actions) == encoded, 0.0, _NEG_INF)

    def log_softmax(self, encoded: IntArray) -> FloatArray:
        return np.where(np.arange(self.n_actions) == encoded[:, None], 0.0, _NEG_INF)

    def sample(self, encoded: IntArray, rng: np.random.Generator) -> tuple[IntArray, FloatArray]:
        return encoded.copy(), np.zeros(encoded.shape)

    def greedy(self, encoded: IntArray, rng: np.random.Generator) -> IntArray:
        return encoded.copy()

    def gradient(self, encoded: IntArray, actions: IntArray, dloss_dlogp: FloatArray) -> FloatArray:
        return np.zeros(0)

    def entropy(self, encoded: IntArray) -> FloatArray:
        return np.zeros(encoded.shape)

    def copy(self) -> KeywordHeuristicPolicy:
        return KeywordHeuristicPolicy()

    def state_dict(self) -> dict[str, NDArray[Any]]:
        return {}

    def load_state_dict(self, state: Mapping[str, NDArray[Any]]) -> None:
        if state:
            raise ValueError("the keyword heuristic has no parameters to load")
