"""Built-in TrainingQuery generator for the tool-use environment in `environment.py`.

One task distribution, six families; the right tool sequence is signalled by keywords (with
synonyms, so a policy has to generalise over phrasings) and the subject (an entity or numbers) is
random.  Held-out sets are made by drawing with another seed.  Every query carries the
`expected_outcome` that `rewards.match_outcome` scores:

- arithmetic        → calculator(op) → answer                       {answer, tool_sequence}
- search            → search(topic) → answer                        {answer, tool_sequence}
- file              → file_reader(path) → answer                    {answer, tool_sequence}
- code              → code_runner(program) → answer                 {test_passed, execution_time_ms, tests}
- search then math  → search(topic) → calculator(op) → answer       {answer, tool_sequence}
- file then math    → file_reader(path) → calculator(op) → answer   {answer, tool_sequence}
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from agentcore_trainer.environments.tooluse import ENTITIES, calculate, run_program, world_value

Query = dict[str, Any]

_OP_PHRASES: dict[str, tuple[str, ...]] = {
    "add": ("{a} plus {b}", "the sum of {a} and {b}", "{a} added to {b}"),
    "subtract": ("{a} minus {b}", "the difference between {a} and {b}", "{a} less {b}"),
    "multiply": ("{a} times {b}", "the product of {a} and {b}", "{a} multiplied by {b}"),
    "divide": ("{a} divided by {b}", "the quotient of {a} and {b}", "{a} over {b}"),
}
_ARITH_TEMPLATES = ("What is {}?", "Compute {}.", "Please work out {}.", "How much is {}?")
_TOPIC_PHRASES: dict[str, tuple[str, ...]] = {
    "weather": ("weather forecast", "rain outlook", "temperature report"),
    "stocks": ("stock price", "share price", "market quote"),
    "sports": ("match score", "game result", "league standing"),
    "science": ("research findings", "scientific study", "lab results"),
}
_SEARCH_TEMPLATES = (
    "Search the web for the latest {p} for {e}.",
    "Look up the current {p} of {e}.",
    "Find the {p} for {e} online.",
)
_FILE_PHRASES: dict[str, tuple[str, ...]] = {
    "config.yaml": ("config file", "yaml configuration", "settings file"),
    "data.csv": ("csv data", "data table", "spreadsheet export"),
    "notes.txt": ("meeting notes", "text notes", "notes document"),
    "users.json": ("user records", "accounts json", "user list"),
}
_FILE_TEMPLATES = (
    "Open the {p} of project {e} and report the value.",
    "Read the {p} in the {e} repository and tell me the number it contains.",
    "Check the {p} for {e} and return its value.",
)
_PROGRAM_PHRASES: dict[str, tuple[str, ...]] = {
    "sort": ("sorts", "orders from smallest to largest"),
    "reverse": ("reverses", "flips the order of"),
    "deduplicate": ("removes duplicates from", "deduplicates"),
    "sum": ("sums", "totals the elements of"),
}
_CODE_TEMPLATES = (
    "Write a function that {p} a list of integers.",
    "Implement code which {p} an array of numbers.",
)
_CHAIN_OPS: dict[str, tuple[str, ...]] = {
    "add": ("then add {k} to it", "then increase it by {k}"),
    "subtract": ("then subtract {k} from it", "then decrease it by {k}"),
    "multiply": ("then multiply it by {k}", "then scale it by {k}"),
}
_CHAIN_SEARCH = ("Look up the {p} of {e}, {op}.", "Find the {p} for {e} and {op}.")
_CHAIN_FILE = ("Read the {p} of project {e}, {op}.", "Open the {p} for {e} and {op}.")
CODE_TIME_BOUND_MS = 100  # one code_runner call + answer fits (61 ms); a second call does not


def _arithmetic(r: random.Random) -> Query:
    op = r.choice(list(_OP_PHRASES))
    b = r.randint(2, 60)
    a = b * r.randint(2, 40) if op == "divide" else r.randint(2, 999)
    text = r.choice(_ARITH_TEMPLATES).format(r.choice(_OP_PHRASES[op]).format(a=a, b=b))
    answer = calculate(op, a, b)
    return _expect(text, answer, ["calculator", "answer"])


def _search(r: random.Random) -> Query:
    topic, entity = r.choice(list(_TOPIC_PHRASES)), r.choice(ENTITIES)
    text = r.choice(_SEARCH_TEMPLATES).format(p=r.choice(_TOPIC_PHRASES[topic]), e=entity)
    return _expect(text, str(world_value("search", topic, entity)), ["search", "answer"])


def _file(r: random.Random) -> Query:
    path, entity = r.choice(list(_FILE_PHRASES)), r.choice(ENTITIES)
    text = r.choice(_FILE_TEMPLATES).format(p=r.choice(_FILE_PHRASES[path]), e=entity)
    return _expect(text, str(world_value("file", path, entity)), ["file_reader", "answer"])


def _code(r: random.Random) -> Query:
    program = r.choice(list(_PROGRAM_PHRASES))
    text = r.choice(_CODE_TEMPLATES).format(p=r.choice(_PROGRAM_PHRASES[program]))
    tests = [{"input": xs, "output": run_program(program, xs)} for xs in _discriminating_inputs(r, 3)]
    outcome = {"test_passed": True, "execution_time_ms": CODE_TIME_BOUND_MS, "tests": tests}
    return {"query": text, "expected_outcome": outcome}


def _discriminating_inputs(r: random.Random, n: int) -> list[list[int]]:
    """Test inputs on which every program gives a different output, so only one passes."""
    inputs: list[list[int]] = []
    while len(inputs) < n:
        xs = [r.randint(0, 9) for _ in range(r.randint(4, 7))]
        outputs = {tuple(run_program(p, xs)) for p in _PROGRAM_PHRASES}
        if len(outputs) == len(_PROGRAM_PHRASES):
            inputs.append(xs)
    return inputs


def _chained(r: random.Random, tool: str) -> Query:
    op, k, entity = r.choice(list(_CHAIN_OPS)), r.randint(2, 9), r.choice(ENTITIES)
    phrases, templates, kind = (
        (_TOPIC_PHRASES, _CHAIN_SEARCH, "search")
        if tool == "search"
        else (_FILE_PHRASES, _CHAIN_FILE, "file")
    )
    arg = r.choice(list(phrases))
    op_text = r.choice(_CHAIN_OPS[op]).format(k=k)
    text = r.choice(templates).format(p=r.choice(phrases[arg]), e=entity, op=op_text)
    answer = calculate(op, world_value(kind, arg, entity), k)
    return _expect(text, answer, [tool, "calculator", "answer"])


def _expect(text: str, answer: str | None, tools: list[str]) -> Query:
    return {"query": text, "expected_outcome": {"answer": answer, "tool_sequence": tools}}


FAMILIES: dict[str, Callable[[random.Random], Query]] = {
    "arithmetic": _arithmetic,
    "search": _search,
    "file": _file,
    "code": _code,
    "search_then_math": lambda r: _chained(r, "search"),
    "file_then_math": lambda r: _chained(r, "file_reader"),
}


def generate(n: int, seed: int) -> list[Query]:
    """`n` TrainingQuery dicts, deterministic for `seed`; other seeds give held-out sets."""
    if n < 0:
        raise ValueError("n must be >= 0")
    # random.Random's sequence for an int seed is stable across Python versions and platforms.
    r = random.Random(seed)
    makers = list(FAMILIES.values())
    return [r.choice(makers)(r) for _ in range(n)]


def train_test_split(
    queries: Sequence[Query], test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[Query], list[Query]]:
    """Shuffle with `seed`, then hold out `test_fraction` (at least one query when possible)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must be in (0, 1)")
    order = list(range(len(queries)))
    random.Random(seed).shuffle(order)
    n_test = max(1, round(len(order) * test_fraction)) if len(order) > 1 else 0
    test = [queries[i] for i in order[:n_test]]
    train = [queries[i] for i in order[n_test:]]
    return train, test


def write_dataset(
    n: int, seed: int, out: str | None, held_out: str | None = None, held_out_fraction: float = 0.2
) -> None:
    """`agentcore datasets generate`: a JSON array to `out` (or stdout), optionally split in two."""
    import json
    import sys

    queries = generate(n, seed)
    if held_out:
        queries, evaluation = train_test_split(queries, test_fraction=held_out_fraction, seed=seed)
        with open(held_out, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(evaluation, indent=1) + "\n")
    text = json.dumps(queries, indent=1) + "\n"
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
