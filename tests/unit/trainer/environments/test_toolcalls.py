"""Tool calls of the LLM agent: parsing generated text, the toolbox, one scripted conversation."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from agentcore.api.training import ToolDefinition
from agentcore_trainer.environments.conversation import converse
from agentcore_trainer.environments.toolcalls import Toolbox, parse_turn
from agentcore_trainer.environments.tooluse import ERROR_STEP_REWARD
from agentcore_trainer.rewards import RewardSpec, score_trajectory

NAMES = ["search", "calculator", "code_runner", "file_reader"]


def shout(text: str) -> str:
    return text.upper()


def broken(**_: object) -> str:
    raise SystemError("tool crashed")


@pytest.mark.parametrize(
    ("text", "kind", "tool"),
    [
        ('{"name": "calculator", "arguments": {"operation": "add"}}', "call", "calculator"),
        ('<tool_call>\n{"name": "search", "arguments": {"topic": "stocks"}}\n</tool_call>', "call", "search"),
        ('  {"name": "search", "arguments": {"topic": "stocks"}} trailing words', "call", "search"),
        ("42", "answer", None),
        ('{"name": "calculator", "arguments": {"operation": ', "error", None),
        ('{"name": "teleport", "arguments": {}}', "error", "teleport"),
        ('{"name": "search", "arguments": "stocks"}', "error", "search"),
        ('{"tool": "search"}', "error", None),
        ("<tool_call>not json</tool_call>", "error", None),
    ],
)
def test_parse_turn(text: str, kind: str, tool: str | None) -> None:
    parsed = parse_turn(text, NAMES)
    assert parsed.kind == kind
    assert parsed.tool == tool
    if kind == "error":
        assert parsed.error


def test_answer_prefix_is_stripped() -> None:
    assert parse_turn("Answer: 391", NAMES).answer == "391"
    assert parse_turn("final answer = 7", NAMES).answer == "7"


def test_toolbox_prompt_names_every_tool_with_its_schema() -> None:
    box = Toolbox.build(
        [ToolDefinition(entry_point=f"{__name__}:shout", name="shout", description="Upper-cases text",
                        parameters={"type": "object", "properties": {"text": {"type": "string"}}})]
    )  # fmt: skip
    system = box.system_message()
    for name in [*NAMES, "shout"]:
        assert f'"name":"{name}"' in system
    assert '"enum":["add","subtract","multiply","divide"]' in system
    opening = box.opening("What is 2 plus 3?")
    assert opening[0]["role"] == "system" and opening[-1] == {"role": "user", "content": "What is 2 plus 3?"}
    assert [m["role"] for m in opening[1:-1]] == ["user", "assistant", "tool", "assistant"]  # worked example


def test_duplicate_tool_name_is_refused() -> None:
    with pytest.raises(ValueError, match="tool name"):
        Toolbox.build([ToolDefinition(entry_point=f"{__name__}:shout", name="search", description="x")])


def test_user_tool_errors_become_results() -> None:
    defs = [
        ToolDefinition(entry_point=f"{__name__}:shout", name="shout", description="x"),
        ToolDefinition(entry_point=f"{__name__}:broken", name="broken", description="x"),
    ]
    session = Toolbox.build(defs).session({"query": "q", "expected_outcome": {}})
    assert session.call("shout", {"text": "hi"}).result == {"value": "HI"}
    assert "TypeError" in session.call("shout", {"wrong": 1}).result["error"]
    failed = session.call("broken", {})
    assert "SystemError: tool crashed" in failed.result["error"] and failed.reward == ERROR_STEP_REWARD


class ScriptedPolicy:
    """Replies from a script, one per turn (token ids are the characters' code points)."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.turn = 0

    def render(self, messages: Sequence[dict[str, str]]) -> list[int]:
        return [ord(c) for c in messages[-1]["content"][:5]]

    def generate(
        self, prompts: Sequence[Sequence[int]], *, greedy: bool, adapter: bool = True
    ) -> list[list[int]]:
        reply = self.replies[self.turn]
        self.turn += 1
        return [[ord(c) for c in reply] for _ in prompts]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(i) for i in ids)


def test_conversation_runs_tools_records_steps_and_is_rewarded() -> None:
    query = {"query": "What is 72 multiplied by 32?",
             "expected_outcome": {"answer": "2304", "tool_sequence": ["calculator", "answer"]}}  # fmt: skip
    policy = ScriptedPolicy(
        ['{"name": "calculator", "arguments": {"operation": "nope"}}',
         '{"name": "calculator", "arguments": {"operation": "multiply"}}', "2304"]
    )  # fmt: skip
    (conv,) = converse(policy, Toolbox.build(), [query], max_steps=5)
    assert [s["action"]["tool"] for s in conv.steps] == ["calculator", "calculator", "answer"]
    assert "error" in conv.steps[0]["result"]
    assert conv.steps[1]["result"]["value"] == "2304"
    assert conv.final_answer == "2304" and conv.done
    assert conv.messages[-1] == {"role": "assistant", "content": "2304"}
    assert conv.input_tokens == sum(s["input_tokens"] for s in conv.steps) > 0
    assert conv.output_tokens == sum(len(t.completion) for t in conv.turns)
    result = score_trajectory(conv.view(), conv.expected_outcome, RewardSpec.default(), 1.0)
    assert result.success is False  # the detour through a failed call breaks the exact tool sequence
    assert result.reward == pytest.approx((1.0 + 2 / 3) / 2 + ERROR_STEP_REWARD)


def test_unanswered_conversation_stops_at_max_steps() -> None:
    policy = ScriptedPolicy(['{"name": "search", "arguments": {"topic": "stocks"}}'] * 3)
    (conv,) = converse(
        policy, Toolbox.build(), [{"query": "Look up Acme", "expected_outcome": {}}], max_steps=3
    )
    assert len(conv.steps) == 3 and conv.final_answer is None and not conv.done
