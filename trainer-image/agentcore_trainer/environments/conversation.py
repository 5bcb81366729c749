"""Multi-turn tool-calling episodes of a language-model agent, in lock-step batches.

Each turn, every running conversation is rendered through the model's chat template (system
prompt with the tools' schemas, the worked example, the query, earlier turns and tool results) and
all of them generate together. A reply is parsed (`toolcalls.parse_turn`): a tool call runs the
tool and its result goes back as a ``tool`` message; an error goes back the same way; any other
reply is the final answer and ends the episode. After `max_steps` turns an episode ends unanswered.

A turn keeps the exact prompt ids the model saw and the ids it generated: the loss needs
logπ(completion | prompt) of what was sampled, not of a re-tokenisation of the text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentcore_trainer.environments.rollout import Clock, expected_outcome_of, utc_now
from agentcore_trainer.environments.toolcalls import ANSWER, ParsedTurn, Toolbox, ToolSession, parse_turn
from agentcore_trainer.environments.tooluse import ERROR_STEP_REWARD


class TextPolicy(Protocol):
    def render(self, messages: Sequence[dict[str, str]]) -> list[int]: ...

    def generate(
        self, prompts: Sequence[Sequence[int]], *, greedy: bool, adapter: bool = True
    ) -> list[list[int]]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


@dataclass
class Turn:
    prompt: list[int]
    completion: list[int]
    parsed: ParsedTurn


@dataclass
class Conversation:
    """One LLM trajectory: its turns (token ids), step records and what rewards read."""

    query: Mapping[str, Any]
    messages: list[dict[str, str]]
    session: ToolSession
    turns: list[Turn] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    step_rewards: list[float] = field(default_factory=list)
    tool_ms: float = 0.0
    final_answer: str | None = None
    done: bool = False

    @property
    def expected_outcome(self) -> Mapping[str, Any]:
        return expected_outcome_of(self.query)

    @property
    def execution_time_ms(self) -> float:
        return self.tool_ms

    @property
    def input_tokens(self) -> int:
        return sum(len(t.prompt) for t in self.turns)

    @property
    def output_tokens(self) -> int:
        return sum(len(t.completion) for t in self.turns)

    @property
    def completion_tokens(self) -> int:
        return self.output_tokens

    def view(self) -> dict[str, Any]:
        """The trajectory as reward functions see it (the same keys as the built-in episodes')."""
        return {
            "query": str(self.query.get("query", "")),
            "steps": self.steps,
            "tools": [s["action"]["tool"] for s in self.steps if s["action"]["tool"] is not None],
            "final_answer": self.final_answer,
            "test_passed": self.session.last_test_passed,
            "execution_time_ms": self.execution_time_ms,
            "step_rewards": self.step_rewards,
        }


def converse(
    policy: TextPolicy,
    toolbox: Toolbox,
    queries: Sequence[Mapping[str, Any]],
    max_steps: int,
    *,
    greedy: bool = False,
    adapter: bool = True,
    clock: Clock = utc_now,
) -> list[Conversation]:
    """Play one conversation per query (see the module docstring)."""
    convs = [Conversation(q, toolbox.opening(str(q["query"])), toolbox.session(q)) for q in queries]
    for _ in range(max_steps):
        active = [c for c in convs if not c.done]
        if not active:
            break
        prompts = [policy.render(c.messages) for c in active]
        started = time.perf_counter()
        completions = policy.generate(prompts, greedy=greedy, adapter=adapter)
        generation_ms = (time.perf_counter() - started) * 1000 / len(active)
        for conv, prompt, completion in zip(active, prompts, completions, strict=True):
            text = policy.decode(completion)
            parsed = parse_turn(text, toolbox.names)
            conv.turns.append(Turn(prompt, completion, parsed))
            _apply(conv, parsed, len(prompt), len(completion), generation_ms, clock)
    return convs


def _apply(
    conv: Conversation, parsed: ParsedTurn, n_in: int, n_out: int, gen_ms: float, clock: Clock
) -> None:
    state = {
        "context": str(conv.query.get("query", "")),
        "step": len(conv.steps),
        "previous_tools": [s["action"]["tool"] for s in conv.steps],
        "last_result": conv.messages[-1]["content"] if conv.messages[-1]["role"] == "tool" else "",
    }
    conv.messages.append({"role": "assistant", "content": parsed.text.strip()})
    tool_ms = 0.0
    if parsed.kind == "answer":
        action: dict[str, Any] = {"tool": ANSWER, "params": {"answer": parsed.answer}}
        result: dict[str, Any] = {"answer": parsed.answer, "test_passed": conv.session.last_test_passed}
        conv.final_answer, conv.done, reward = parsed.answer, True, 0.0
    elif parsed.kind == "call" and parsed.tool is not None:
        action = {"tool": parsed.tool, "params": parsed.arguments or {}}
        called = conv.session.call(parsed.tool, parsed.arguments or {})
        result, tool_ms, reward = called.result, called.duration_ms, called.reward
    else:
        action = {"tool": parsed.tool, "params": parsed.arguments or {}}
        result, reward = {"error": parsed.error}, ERROR_STEP_REWARD
    if not conv.done:
        conv.messages.append({"role": "tool", "content": json.dumps(result, sort_keys=True, default=str)})
    conv.tool_ms += tool_ms
    conv.step_rewards.append(reward)
    conv.steps.append(
        {
            "state": state,
            "action": {**action, "text": parsed.text},
            "result": result,
            "timestamp": clock().isoformat().replace("+00:00", "Z"),
            "duration_ms": tool_ms,
            "generation_ms": round(gen_ms, 3),
            "input_tokens": n_in,
            "output_tokens": n_out,
        }
    )
