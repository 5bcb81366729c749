"""Agent environments: the protocol the trainer drives, and a built-in CPU tool-use world.

The built-in world is deliberately small but not trivial: five tools, each taking one argument from
a short fixed list, so an action is a (tool, argument) pair out of `len(ACTIONS)` = 17.  Which pair
is right at each step depends on keywords in the query and on what the agent already did (e.g.
"look up the stock price of Acme, then multiply it by 3" needs search(stocks) → calculator(multiply)
→ answer).  Tool outputs are deterministic functions of the query and the arguments, so the
generator in `datasets.py` can state the exact expected answer, and rewards are reproducible.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

TOOLS: dict[str, tuple[str, ...]] = {
    "search": ("weather", "stocks", "sports", "science"),
    "calculator": ("add", "subtract", "multiply", "divide"),
    "code_runner": ("sort", "reverse", "deduplicate", "sum"),
    "file_reader": ("config.yaml", "data.csv", "notes.txt", "users.json"),
    "answer": ("submit",),
}
PARAM_NAMES: dict[str, str] = {
    "search": "topic",
    "calculator": "operation",
    "code_runner": "program",
    "file_reader": "path",
    "answer": "mode",
}
# The joint action space: index ↔ (tool, argument).  Order is part of the checkpoint format.
ACTIONS: tuple[tuple[str, str], ...] = tuple((tool, arg) for tool, args in TOOLS.items() for arg in args)
ACTION_INDEX: dict[tuple[str, str], int] = {pair: i for i, pair in enumerate(ACTIONS)}
# Simulated latency per call; execution_time_ms of a trajectory is their sum, so extra calls cost time.
TOOL_DURATION_MS: dict[str, float] = {
    "search": 120.0,
    "calculator": 5.0,
    "code_runner": 60.0,
    "file_reader": 15.0,
    "answer": 1.0,
}
# Names the search and file tools know about; the generator draws query subjects from this list.
# Appending keeps every world_value: it hashes the name, not its position.
ENTITIES: tuple[str, ...] = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Wonka",
    "Cyberdyne", "Soylent", "Tyrell", "Oscorp", "Aperture", "Gringotts", "Monarch", "Nakatomi",
    "Virtucon", "Massive", "Dunder",
    # Held-out subjects: `datasets.generate(split="held_out")` draws only these, training never does.
    "Krusty", "Rekall", "Weyland", "Yoyodyne", "Zorin", "Blamco", "Kwik", "Duff", "Sirius", "Prestige",
)  # fmt: skip
N_TRAIN_ENTITIES = 20  # ENTITIES[:20] are training subjects, the rest are held out
ERROR_STEP_REWARD = -0.05  # a small per-step penalty for calls that fail (no entity, no operands)
CHARS_PER_TOKEN = 4  # the usual rough English estimate; used for cost accounting later

_INT_RE = re.compile(r"-?\d+")
_ENTITY_SET = {e.lower(): e for e in ENTITIES}


@dataclass(frozen=True)
class Observation:
    """What the policy sees before choosing an action."""

    query: str
    history: tuple[int, ...] = ()
    last_result: str = ""

    @property
    def step(self) -> int:
        return len(self.history)

    @property
    def prev_action(self) -> int:
        return self.history[-1] if self.history else -1

    def to_state(self) -> dict[str, Any]:
        """The JSON `state` of a trajectory step (the spec's `{"context": ...}`)."""
        tools = [ACTIONS[a][0] for a in self.history]
        return {"context": self.query, "step": self.step, "previous_tools": tools,
                "last_result": self.last_result}  # fmt: skip


class Transition(NamedTuple):
    """One environment step: the protocol's (observation, result, reward, done) plus usage data."""

    observation: Observation
    result: dict[str, Any]
    reward: float
    done: bool
    duration_ms: float = 0.0
    input_tokens: int = 0  # what an LLM agent would read for this step (query + last result)
    output_tokens: int = 0  # what it would write (the tool call)


@runtime_checkable
class AgentEnvironment(Protocol):
    """A single-episode environment; the trainer makes one per trajectory through a factory."""

    n_actions: int

    def reset(self, query: Mapping[str, Any]) -> Observation: ...

    def step(self, action: int) -> Transition: ...

    def describe_action(self, action: int) -> dict[str, Any]:
        """The JSON `action` of a trajectory step: `{"tool": ..., "params": {...}}`."""
        ...


EnvFactory = Callable[[], AgentEnvironment]


def world_value(kind: str, arg: str, entity: str) -> int:
    """The number a lookup returns: stable across processes (not Python's salted `hash`)."""
    digest = hashlib.blake2b(f"{kind}|{arg}|{entity}".encode(), digest_size=4).digest()
    return 100 + int.from_bytes(digest, "big") % 900


def find_entity(text: str) -> str | None:
    for word in re.findall(r"[A-Za-z]+", text):
        if word.lower() in _ENTITY_SET:
            return _ENTITY_SET[word.lower()]
    return None


def run_program(program: str, values: Sequence[int]) -> list[int]:
    """The reference programs `code_runner` can execute against a task's tests."""
    if program == "sort":
        return sorted(values)
    if program == "reverse":
        return list(reversed(values))
    if program == "deduplicate":
        return list(dict.fromkeys(values))
    if program == "sum":
        return [sum(values)]
    raise ValueError(f"unknown program {program!r}")


def calculate(op: str, a: int, b: int) -> str | None:
    """Integer arithmetic as the calculator tool shows it; None for an invalid division."""
    if op == "add":
        return str(a + b)
    if op == "subtract":
        return str(a - b)
    if op == "multiply":
        return str(a * b)
    if b == 0:
        return None
    return str(a // b) if a % b == 0 else f"{a / b:.4f}"


def estimate_tokens(*texts: str) -> int:
    return sum(math.ceil(len(t) / CHARS_PER_TOKEN) for t in texts)


@dataclass
class ToolUseEnvironment:
    """The built-in CPU environment (see the module docstring).

    `answer` ends the episode and submits the value of the previous tool call; for a `code_runner`
    call that value also carries whether the task's hidden tests (`expected_outcome["tests"]`, the
    sandbox's test harness, never shown to the policy) passed.
    """

    n_actions: int = len(ACTIONS)
    _query: str = ""
    _tests: list[dict[str, Any]] = field(default_factory=list)
    _history: list[int] = field(default_factory=list)
    _last: dict[str, Any] = field(default_factory=dict)
    _shown: str = ""
    _done: bool = True

    def reset(self, query: Mapping[str, Any]) -> Observation:
        self._query = str(query["query"])
        expected = query.get("expected_outcome") or {}
        self._tests = list(expected.get("tests", [])) if isinstance(expected, Mapping) else []
        self._history, self._last, self._shown, self._done = [], {}, "", False
        return Observation(self._query)

    def describe_action(self, action: int) -> dict[str, Any]:
        tool, arg = ACTIONS[action]
        return {"tool": tool, "params": {PARAM_NAMES[tool]: arg}}

    def step(self, action: int) -> Transition:
        if self._done:
            raise RuntimeError("step() after the episode ended; call reset() first")
        tool, arg = ACTIONS[action]
        result = self._run(tool, arg)
        self._history.append(action)
        self._done = tool == "answer"
        if tool != "answer":
            self._last = result
        prompt_tokens = estimate_tokens(self._query, self._shown)
        self._shown = _summarise(result)
        obs = Observation(self._query, tuple(self._history), self._shown)
        reward = ERROR_STEP_REWARD if "error" in result else 0.0
        call_tokens = estimate_tokens(f"{tool}({arg})")
        return Transition(obs, result, reward, self._done, TOOL_DURATION_MS[tool], prompt_tokens, call_tokens)

    def _run(self, tool: str, arg: str) -> dict[str, Any]:
        if tool == "answer":
            return {"answer": self._last.get("value"), "test_passed": self._last.get("test_passed")}
        if tool == "calculator":
            return self._calculator(arg)
        if tool == "code_runner":
            return self._code_runner(arg)
        entity = find_entity(self._query)
        if entity is None:
            return {"error": f"{tool}: nothing to look up"}
        kind = "search" if tool == "search" else "file"
        return {"entity": entity, PARAM_NAMES[tool]: arg, "value": str(world_value(kind, arg, entity))}

    def _calculator(self, op: str) -> dict[str, Any]:
        # Operands: the previous tool's number first (chained tasks), then the numbers in the query.
        previous = [int(v) for v in _INT_RE.findall(str(self._last.get("value", "")))]
        operands = previous + [int(v) for v in _INT_RE.findall(self._query)]
        if len(operands) < 2:
            return {"error": "calculator: needs two operands"}
        value = calculate(op, operands[0], operands[1])
        if value is None:
            return {"error": "calculator: division by zero"}
        return {"operation": op, "operands": operands[:2], "value": value}

    def _code_runner(self, program: str) -> dict[str, Any]:
        passed = sum(run_program(program, t["input"]) == list(t["output"]) for t in self._tests)
        total = len(self._tests)
        sample = run_program(program, self._tests[0]["input"]) if total else []
        return {
            "program": program,
            "passed": passed,
            "total": total,
            "test_passed": total > 0 and passed == total,
            "value": str(sample),
        }


def _summarise(result: Mapping[str, Any]) -> str:
    return "; ".join(f"{k}={v}" for k, v in result.items())
