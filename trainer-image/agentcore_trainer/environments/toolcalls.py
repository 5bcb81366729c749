"""Tools for a language-model agent: JSON-schema descriptions, the system prompt, and parsing a tool
call out of generated text.

Wire format (one worked example is shown to the model, because small models answer in prose
otherwise): a turn that calls a tool is one JSON object ``{"name": ..., "arguments": {...}}``,
optionally inside ``<tool_call>...</tool_call>`` (the Hermes/Qwen convention many models know);
any other reply is the final answer. A reply that looks like a call but is not valid JSON, names an
unknown tool or has non-object arguments is an error step, recorded and shown to the model — never
an exception.

The built-in tools are the built-in world's (`tooluse.py`): the same names, arguments and results,
so the built-in datasets, rewards and `expected_outcome` work unchanged for both backends. User
tools come from `config.tools` as entry points.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agentcore.api.training import ToolDefinition
from agentcore_trainer.environments.tooluse import (
    ACTION_INDEX,
    ERROR_STEP_REWARD,
    PARAM_NAMES,
    TOOLS,
    ToolUseEnvironment,
)
from agentcore_trainer.rewards import load_entry_point

ANSWER = "answer"  # the pseudo-tool a final reply is recorded as (built-in tool sequences end with it)
_TOOL_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_BUILTIN_DESCRIPTIONS = {
    "search": "Look up a number about the company in the task.",
    "calculator": "Apply the operation to the previous result and the numbers in the task.",
    "code_runner": "Run a program on the task's tests.",
    "file_reader": "Read a number from a file of the company in the task.",
}
DEFAULT_SYSTEM_PROMPT = (
    "You are an agent that solves tasks by calling tools. To call a tool, reply with exactly one "
    'line of JSON: {"name": "<tool>", "arguments": {...}}. The tool\'s result comes back as a tool '
    "message. When you know the answer, reply with the answer alone (for a number, just the number)."
)
WORKED_EXAMPLE: tuple[dict[str, str], ...] = (
    {"role": "user", "content": "What is 7 plus 5?"},
    {"role": "assistant", "content": '{"name": "calculator", "arguments": {"operation": "add"}}'},
    {"role": "tool", "content": '{"operation": "add", "operands": [7, 5], "value": "12"}'},
    {"role": "assistant", "content": "12"},
)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]

    def schema(self) -> dict[str, Any]:
        """The function schema (name, description, JSON-schema parameters) the prompt lists."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


def builtin_specs() -> list[ToolSpec]:
    specs = []
    for tool, args in TOOLS.items():
        if tool == ANSWER:
            continue
        param = PARAM_NAMES[tool]
        schema = {"type": "object", "properties": {param: {"type": "string", "enum": list(args)}},
                  "required": [param]}  # fmt: skip
        specs.append(ToolSpec(tool, _BUILTIN_DESCRIPTIONS[tool], schema))
    return specs


@dataclass(frozen=True)
class ParsedTurn:
    kind: Literal["call", "answer", "error"]
    text: str
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    answer: str | None = None
    error: str | None = None


def parse_turn(text: str, tool_names: Sequence[str]) -> ParsedTurn:
    """A generated reply → a tool call, a final answer, or an error step (see the module docstring)."""
    stripped = text.strip()
    tagged = _TOOL_CALL_RE.search(stripped)
    candidate = tagged.group(1) if tagged else stripped if stripped.startswith("{") else None
    if candidate is None:
        answer = re.sub(r"^(final\s+)?answer\s*[:=]\s*", "", stripped, flags=re.IGNORECASE).strip()
        return ParsedTurn("answer", text, answer=answer)
    try:
        obj, _ = json.JSONDecoder().raw_decode(candidate)
    except json.JSONDecodeError as exc:
        return ParsedTurn("error", text, error=f"tool call is not valid JSON: {exc.msg}")
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return ParsedTurn("error", text, error='a tool call is an object with a string "name"')
    name, arguments = obj["name"], obj.get("arguments", {})
    if not isinstance(arguments, dict):
        return ParsedTurn("error", text, tool=name, error='"arguments" must be an object')
    if name not in tool_names:
        return ParsedTurn("error", text, tool=name, error=f"unknown tool {name!r}; tools: {list(tool_names)}")
    return ParsedTurn("call", text, tool=name, arguments=arguments)


UserTool = Callable[..., Any]


@dataclass(frozen=True)
class Toolbox:
    """The tools of a run: the built-in ones and the user's (by entry point)."""

    specs: tuple[ToolSpec, ...]
    user: Mapping[str, UserTool]
    system_prompt: str
    worked_example: tuple[dict[str, str], ...]

    @classmethod
    def build(cls, definitions: Sequence[ToolDefinition] = (), system_prompt: str | None = None) -> Toolbox:
        user = {d.name: load_entry_point(d.entry_point) for d in definitions}
        specs = [*builtin_specs(), *(ToolSpec(d.name, d.description, d.parameters) for d in definitions)]
        if len({s.name for s in specs}) != len(specs):
            raise ValueError("config.tools: a tool name repeats a built-in or another tool's name")
        example = WORKED_EXAMPLE if system_prompt is None else ()
        return cls(tuple(specs), user, system_prompt or DEFAULT_SYSTEM_PROMPT, example)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def system_message(self) -> str:
        # Compact JSON: the schemas are in every prompt, and prompt tokens dominate the compute.
        schemas = "\n".join(json.dumps(s.schema(), separators=(",", ":")) for s in self.specs)
        return f"{self.system_prompt}\n\nTools:\n{schemas}"

    def opening(self, query: str) -> list[dict[str, str]]:
        """The conversation an episode starts from."""
        return [{"role": "system", "content": self.system_message()}, *self.worked_example,
                {"role": "user", "content": query}]  # fmt: skip

    def session(self, query: Mapping[str, Any]) -> ToolSession:
        return ToolSession(self, query)


@dataclass
class ToolResult:
    result: dict[str, Any]
    duration_ms: float
    reward: float  # the environment's step reward (a small penalty for a failed call)


class ToolSession:
    """The tools bound to one episode (built-in tools keep per-episode state: the last value)."""

    def __init__(self, box: Toolbox, query: Mapping[str, Any]) -> None:
        self.box = box
        self.world = ToolUseEnvironment()
        self.world.reset(query)
        self.last_test_passed: bool | None = None

    def call(self, name: str, arguments: Mapping[str, Any]) -> ToolResult:
        if name in self.box.user:
            return self._user(name, arguments)
        param = PARAM_NAMES[name]
        action = ACTION_INDEX.get((name, str(arguments.get(param, ""))))
        if action is None:
            allowed = list(TOOLS[name])
            return ToolResult({"error": f"{name}: {param} must be one of {allowed}"}, 1.0, ERROR_STEP_REWARD)
        transition = self.world.step(action)
        if "test_passed" in transition.result:
            self.last_test_passed = bool(transition.result["test_passed"])
        return ToolResult(dict(transition.result), transition.duration_ms, transition.reward)

    def _user(self, name: str, arguments: Mapping[str, Any]) -> ToolResult:
        started = time.perf_counter()
        try:
            value = self.box.user[name](**arguments)
            result = value if isinstance(value, dict) else {"value": value}
            json.dumps(result)  # a result the model cannot read back is an error, not a crash
        except Exception as exc:  # user code may raise anything; the episode records it
            result = {"error": f"{name}: {type(exc).__name__}: {exc}"}
        elapsed = (time.perf_counter() - started) * 1000
        return ToolResult(result, elapsed, ERROR_STEP_REWARD if "error" in result else 0.0)
