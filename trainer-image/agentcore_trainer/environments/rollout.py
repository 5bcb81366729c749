"""Run a policy in environments, all episodes in lock-step so the policy sees one batch per step."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from agentcore_trainer.environments.tooluse import EnvFactory, Observation, Transition
from agentcore_trainer.policies.builtin import Policy

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def expected_outcome_of(query: Mapping[str, Any]) -> Mapping[str, Any]:
    """A query's expected_outcome as rewards read it ({} when absent or not an object)."""
    outcome = query.get("expected_outcome") or {}
    return outcome if isinstance(outcome, Mapping) else {}


@dataclass
class Episode:
    """One trajectory as the environment produced it (policy-side data plus the step records)."""

    query: Mapping[str, Any]
    observations: list[Observation] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def expected_outcome(self) -> Mapping[str, Any]:
        return expected_outcome_of(self.query)

    @property
    def execution_time_ms(self) -> float:
        return float(sum(t.duration_ms for t in self.transitions))

    @property
    def input_tokens(self) -> int:
        return sum(t.input_tokens for t in self.transitions)

    @property
    def output_tokens(self) -> int:
        return sum(t.output_tokens for t in self.transitions)

    def view(self) -> dict[str, Any]:
        """The trajectory as reward functions see it (see rewards.py)."""
        tools = [s["action"]["tool"] for s in self.steps]
        final = self.transitions[-1].result if self.transitions and self.transitions[-1].done else {}
        return {
            "query": str(self.query.get("query", "")),
            "steps": self.steps,
            "tools": tools,
            "final_answer": final.get("answer"),
            "test_passed": final.get("test_passed"),
            "execution_time_ms": self.execution_time_ms,
            "step_rewards": [t.reward for t in self.transitions],
        }


def rollout(
    policy: Policy,
    env_factory: EnvFactory,
    queries: Sequence[Mapping[str, Any]],
    max_steps: int,
    rng: np.random.Generator,
    greedy: bool = False,
    clock: Clock = utc_now,
) -> list[Episode]:
    """Play one episode per query for at most `max_steps` steps.

    Randomness comes only from `rng` (one draw per active state per step when sampling), so a run
    is replayed exactly from the same generator state.
    """
    envs = [env_factory() for _ in queries]
    episodes = [Episode(q) for q in queries]
    current = [env.reset(q) for env, q in zip(envs, queries, strict=True)]
    active = list(range(len(queries)))
    for _ in range(max_steps):
        if not active:
            break
        encoded = policy.encode([current[i] for i in active])
        actions = policy.greedy(encoded, rng) if greedy else policy.sample(encoded, rng)[0]
        still_running = []
        for i, action in zip(active, actions.tolist(), strict=True):
            transition = envs[i].step(action)
            _record(episodes[i], current[i], action, transition, envs[i].describe_action(action), clock)
            current[i] = transition.observation
            if not transition.done:
                still_running.append(i)
        active = still_running
    return episodes


def _record(
    episode: Episode,
    observation: Observation,
    action: int,
    transition: Transition,
    described: dict[str, Any],
    clock: Clock,
) -> None:
    episode.observations.append(observation)
    episode.actions.append(action)
    episode.transitions.append(transition)
    episode.steps.append(
        {
            "state": observation.to_state(),
            "action": described,
            "result": transition.result,
            "timestamp": clock().isoformat().replace("+00:00", "Z"),
            "duration_ms": transition.duration_ms,
        }
    )
