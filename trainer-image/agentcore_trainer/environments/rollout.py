"""Run a policy in environments, all episodes in lock-step so the policy sees one batch per step."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

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


class GroupStreams:
    """One generator per query group, for training rollouts.

    Episode i of the batch belongs to group i // group_size and takes its uniform draws from that
    group's generator only, so a group's trajectories do not depend on which other groups share
    the batch: the same whatever the number of ranks the batch is sharded across.
    """

    def __init__(self, generators: Sequence[np.random.Generator], group_size: int) -> None:
        self.generators, self.group_size = list(generators), group_size

    def draws(self, episodes: Sequence[int]) -> np.random.Generator:
        """A source whose ``random((n,))`` gives one draw per listed episode, in order."""
        return cast(np.random.Generator, _Draws(self, list(episodes)))


class _Draws:
    def __init__(self, streams: GroupStreams, episodes: list[int]) -> None:
        self.streams, self.episodes = streams, episodes

    def random(self, size: tuple[int, ...]) -> NDArray[np.float64]:
        if tuple(size) != (len(self.episodes),):
            raise ValueError(f"one draw per episode: asked for {size}, have {len(self.episodes)} episodes")
        gens, g = self.streams.generators, self.streams.group_size
        return np.array([gens[i // g].random() for i in self.episodes], dtype=np.float64)


def rollout(
    policy: Policy,
    env_factory: EnvFactory,
    queries: Sequence[Mapping[str, Any]],
    max_steps: int,
    rng: np.random.Generator | GroupStreams,
    greedy: bool = False,
    clock: Clock = utc_now,
) -> list[Episode]:
    """Play one episode per query for at most `max_steps` steps.

    Randomness comes only from `rng` (one draw per active state per step when sampling; with
    `GroupStreams`, from the episode's group generator), so a run is replayed exactly from the
    same generator state.
    """
    envs = [env_factory() for _ in queries]
    episodes = [Episode(q) for q in queries]
    current = [env.reset(q) for env, q in zip(envs, queries, strict=True)]
    active = list(range(len(queries)))
    for _ in range(max_steps):
        if not active:
            break
        encoded = policy.encode([current[i] for i in active])
        source = rng.draws(active) if isinstance(rng, GroupStreams) else rng
        actions = policy.greedy(encoded, source) if greedy else policy.sample(encoded, source)[0]
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
