"""Built-in TrainingQuery generator for the tool-use environment in `environment.py`.

One task distribution, six families; the right tool sequence is signalled by keywords (with
synonyms, so a policy has to generalise over phrasings) and the subject (an entity or numbers) is
random.  Every query carries the `expected_outcome` that `rewards.match_outcome` scores:

- arithmetic        → calculator(op) → answer                       {answer, tool_sequence}
- search            → search(topic) → answer                        {answer, tool_sequence}
- file              → file_reader(path) → answer                    {answer, tool_sequence}
- code              → code_runner(program) → answer                 {test_passed, execution_time_ms, tests}
- search then math  → search(topic) → calculator(op) → answer       {answer, tool_sequence}
- file then math    → file_reader(path) → calculator(op) → answer   {answer, tool_sequence}

Two splits (`generate(..., split=)`), built so that a held-out score measures generalisation and
not memory: the held-out split draws its subjects from entities (`tooluse.ENTITIES[20:]`) and
numbers that training never uses (training: operands 100-999, divisors 10-49, chain constants
2-5; held out: 1000-9999, 50-99, 6-9),
chains tool steps in (argument, operation) combinations training never shows, and wraps the
keyword phrases in sentence templates of its own.  The keyword phrases themselves (e.g. "share
price", "times") are shared: they are the task's vocabulary, and without them no learner could know
what a query asks for.  `near_duplicates` states the "no near-duplicate" check concretely.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agentcore_trainer.environments.tooluse import (
    ENTITIES,
    N_TRAIN_ENTITIES,
    calculate,
    run_program,
    world_value,
)

Query = dict[str, Any]
Split = Literal["train", "held_out"]
SPLITS: tuple[Split, ...] = ("train", "held_out")

_OP_PHRASES: dict[str, tuple[str, ...]] = {
    "add": ("{a} plus {b}", "the sum of {a} and {b}", "{a} added to {b}"),
    "subtract": ("{a} minus {b}", "the difference between {a} and {b}", "{a} less {b}"),
    "multiply": ("{a} times {b}", "the product of {a} and {b}", "{a} multiplied by {b}"),
    "divide": ("{a} divided by {b}", "the quotient of {a} and {b}", "{a} over {b}"),
}
_TOPIC_PHRASES: dict[str, tuple[str, ...]] = {
    "weather": ("weather forecast", "rain outlook", "temperature report"),
    "stocks": ("stock price", "share price", "market quote"),
    "sports": ("match score", "game result", "league standing"),
    "science": ("research findings", "scientific study", "lab results"),
}
_FILE_PHRASES: dict[str, tuple[str, ...]] = {
    "config.yaml": ("config file", "yaml configuration", "settings file"),
    "data.csv": ("csv data", "data table", "spreadsheet export"),
    "notes.txt": ("meeting notes", "text notes", "notes document"),
    "users.json": ("user records", "accounts json", "user list"),
}
_PROGRAM_PHRASES: dict[str, tuple[str, ...]] = {
    "sort": ("sorts", "orders from smallest to largest"),
    "reverse": ("reverses", "flips the order of"),
    "deduplicate": ("removes duplicates from", "deduplicates"),
    "sum": ("sums", "totals the elements of"),
}
_CHAIN_OPS: dict[str, tuple[str, ...]] = {
    "add": ("then add {k} to it", "then increase it by {k}"),
    "subtract": ("then subtract {k} from it", "then decrease it by {k}"),
    "multiply": ("then multiply it by {k}", "then scale it by {k}"),
}
CODE_TIME_BOUND_MS = 100  # one code_runner call + answer fits (61 ms); a second call does not


@dataclass(frozen=True)
class SplitSpec:
    """What one split may draw: sentence templates per family, subjects and number ranges."""

    arithmetic: tuple[str, ...]
    search: tuple[str, ...]
    file: tuple[str, ...]
    code: tuple[str, ...]
    chain_search: tuple[str, ...]
    chain_file: tuple[str, ...]
    entities: tuple[str, ...]
    operand: tuple[int, int]  # the first operand a (for a division too: a = b · q lands in it)
    divisor: tuple[int, int]  # the second operand b
    chain_constant: tuple[int, int]
    held_out_combinations: bool  # chains use only the held-out (argument, operation) pairs


_TRAIN = SplitSpec(
    arithmetic=("What is {}?", "Compute {}.", "Please work out {}.", "How much is {}?"),
    search=(
        "Search the web for the latest {p} for {e}.",
        "Look up the current {p} of {e}.",
        "Find the {p} for {e} online.",
    ),
    file=(
        "Open the {p} of project {e} and report the value.",
        "Read the {p} in the {e} repository and tell me the number it contains.",
        "Check the {p} for {e} and return its value.",
    ),
    code=("Write a function that {p} a list of integers.", "Implement code which {p} an array of numbers."),
    chain_search=("Look up the {p} of {e}, {op}.", "Find the {p} for {e} and {op}."),
    chain_file=("Read the {p} of project {e}, {op}.", "Open the {p} for {e} and {op}."),
    entities=ENTITIES[:N_TRAIN_ENTITIES],
    operand=(100, 999),
    divisor=(10, 49),
    chain_constant=(2, 5),
    held_out_combinations=False,
)
_HELD_OUT = SplitSpec(
    arithmetic=("I need the result of {} for my report.", "Tell me quickly: {} equals what?"),
    search=(
        "Which {p} is published about {e} right now on the internet?",
        "Give me today's {p} concerning {e} from a web source.",
    ),
    file=(
        "Inside the {e} codebase there is a {p}; which number does it hold?",
        "Fetch the number stored in the {p} belonging to {e}.",
    ),
    code=(
        "Produce a routine which {p} a given sequence of whole numbers.",
        "I want a program that {p} some numbers; please provide it.",
    ),
    chain_search=(
        "Using today's {p} concerning {e} as a starting number, {op}.",
        "Get {e}'s {p} from a web source; {op}.",
    ),
    chain_file=(
        "Take the number stored in the {p} belonging to {e}, {op}.",
        "Inside the {e} codebase there is a {p}: take its number, {op}.",
    ),
    entities=ENTITIES[N_TRAIN_ENTITIES:],
    operand=(1000, 9999),
    divisor=(50, 99),
    chain_constant=(6, 9),
    held_out_combinations=True,
)
SPLIT_SPECS: dict[Split, SplitSpec] = {"train": _TRAIN, "held_out": _HELD_OUT}


def is_held_out_combination(arg_index: int, op_index: int) -> bool:
    """A quarter of the chain (argument, operation) pairs, one per operation, are held out; every
    argument and every operation still occurs in training, only not in these pairings."""
    return arg_index == op_index


def _arithmetic(r: random.Random, spec: SplitSpec) -> Query:
    op = r.choice(list(_OP_PHRASES))
    b = r.randint(*spec.divisor)
    low, high = spec.operand
    # Whole divisions: a = b · q with q chosen so that a stays in the operand range.
    a = b * r.randint(-(-low // b), high // b) if op == "divide" else r.randint(low, high)
    text = r.choice(spec.arithmetic).format(r.choice(_OP_PHRASES[op]).format(a=a, b=b))
    answer = calculate(op, a, b)
    return _expect(text, answer, ["calculator", "answer"])


def _search(r: random.Random, spec: SplitSpec) -> Query:
    topic, entity = r.choice(list(_TOPIC_PHRASES)), r.choice(spec.entities)
    text = r.choice(spec.search).format(p=r.choice(_TOPIC_PHRASES[topic]), e=entity)
    return _expect(text, str(world_value("search", topic, entity)), ["search", "answer"])


def _file(r: random.Random, spec: SplitSpec) -> Query:
    path, entity = r.choice(list(_FILE_PHRASES)), r.choice(spec.entities)
    text = r.choice(spec.file).format(p=r.choice(_FILE_PHRASES[path]), e=entity)
    return _expect(text, str(world_value("file", path, entity)), ["file_reader", "answer"])


def _code(r: random.Random, spec: SplitSpec) -> Query:
    program = r.choice(list(_PROGRAM_PHRASES))
    text = r.choice(spec.code).format(p=r.choice(_PROGRAM_PHRASES[program]))
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


def _combination(r: random.Random, args: list[str], spec: SplitSpec) -> tuple[str, str]:
    ops = list(_CHAIN_OPS)
    pairs = [
        (arg, op)
        for i, arg in enumerate(args)
        for j, op in enumerate(ops)
        if is_held_out_combination(i, j) == spec.held_out_combinations
    ]
    return r.choice(pairs)


def _chained(r: random.Random, spec: SplitSpec, tool: str) -> Query:
    phrases, templates, kind = (
        (_TOPIC_PHRASES, spec.chain_search, "search")
        if tool == "search"
        else (_FILE_PHRASES, spec.chain_file, "file")
    )
    arg, op = _combination(r, list(phrases), spec)
    k, entity = r.randint(*spec.chain_constant), r.choice(spec.entities)
    op_text = r.choice(_CHAIN_OPS[op]).format(k=k)
    text = r.choice(templates).format(p=r.choice(phrases[arg]), e=entity, op=op_text)
    answer = calculate(op, world_value(kind, arg, entity), k)
    return _expect(text, answer, [tool, "calculator", "answer"])


def _expect(text: str, answer: str | None, tools: list[str]) -> Query:
    return {"query": text, "expected_outcome": {"answer": answer, "tool_sequence": tools}}


FAMILIES: dict[str, Callable[[random.Random, SplitSpec], Query]] = {
    "arithmetic": _arithmetic,
    "search": _search,
    "file": _file,
    "code": _code,
    "search_then_math": lambda r, spec: _chained(r, spec, "search"),
    "file_then_math": lambda r, spec: _chained(r, spec, "file_reader"),
}


def generate(n: int, seed: int, split: Split = "train") -> list[Query]:
    """`n` TrainingQuery dicts, deterministic for (`seed`, `split`).

    Evaluate on `split="held_out"`: it shares no subject, number, chain combination or sentence
    template with `"train"` (see the module docstring).  Another seed of the same split gives
    fresh draws from the same distribution, with the near-duplicates that implies.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if split not in SPLIT_SPECS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    spec = SPLIT_SPECS[split]
    # random.Random's sequence for an int seed is stable across Python versions and platforms.
    r = random.Random(seed)
    makers = list(FAMILIES.values())
    return [r.choice(makers)(r, spec) for _ in range(n)]


_WORD_RE = re.compile(r"[a-z]+|\d+")
_ENTITY_WORDS = {e.lower() for e in ENTITIES}
NEAR_DUPLICATE_JACCARD = 0.8


def masked_words(text: str) -> tuple[str, ...]:
    """Lower-case words with every number → `<num>` and every entity → `<ent>`: two queries that
    differ only in their subject have the same masked words."""
    words = _WORD_RE.findall(text.lower())
    return tuple("<num>" if w.isdigit() else "<ent>" if w in _ENTITY_WORDS else w for w in words)


def trigrams(text: str) -> frozenset[tuple[str, ...]]:
    words = masked_words(text)
    return frozenset(zip(words, words[1:], words[2:], strict=False)) or frozenset({words})


def jaccard(a: frozenset[Any], b: frozenset[Any]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicates(
    train: Sequence[Query], held_out: Sequence[Query], threshold: float = NEAR_DUPLICATE_JACCARD
) -> list[tuple[str, str]]:
    """(held-out text, training text) pairs that are near-duplicates: equal after masking numbers
    and entities, or with a Jaccard similarity of masked word 3-grams >= `threshold`."""
    train_texts = {str(q["query"]) for q in train}
    train_grams = {t: trigrams(t) for t in train_texts}
    by_masked = {masked_words(t): t for t in train_texts}
    found: list[tuple[str, str]] = []
    for text in dict.fromkeys(str(q["query"]) for q in held_out):
        twin = by_masked.get(masked_words(text))
        if twin is None:
            grams = trigrams(text)
            twin = next((t for t, g in train_grams.items() if jaccard(grams, g) >= threshold), None)
        if twin is not None:
            found.append((text, twin))
    return found


def train_test_split(
    queries: Sequence[Query], test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[Query], list[Query]]:
    """Shuffle with `seed`, then hold out `test_fraction` (at least one query when possible).

    A random split of one generated set keeps near-duplicates on both sides; for a held-out set
    that measures generalisation use `generate(..., split="held_out")`.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must be in (0, 1)")
    order = list(range(len(queries)))
    random.Random(seed).shuffle(order)
    n_test = max(1, round(len(order) * test_fraction)) if len(order) > 1 else 0
    test = [queries[i] for i in order[:n_test]]
    train = [queries[i] for i in order[n_test:]]
    return train, test


def write_dataset(
    n: int,
    seed: int,
    out: str | None,
    held_out: str | None = None,
    held_out_fraction: float = 0.2,
    split: Split = "train",
) -> None:
    """`agentcore datasets generate`: `n` queries of `split` as a JSON array to `out` (or stdout);
    with `held_out`, also round(n · held_out_fraction) queries of the held-out split to that file."""
    import json
    import sys

    if held_out:
        if not 0.0 < held_out_fraction < 1.0:
            raise ValueError("held_out_fraction must be in (0, 1)")
        evaluation = generate(max(1, round(n * held_out_fraction)), seed, "held_out")
        with open(held_out, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(evaluation, indent=1) + "\n")
    text = json.dumps(generate(n, seed, split), indent=1) + "\n"
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
