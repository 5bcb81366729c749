"""The policy backends behind one interface: what `run.py` and `training.evaluate` need of a trainer.

`builtin` wraps the numpy `Trainer` (hashed softmax policy); `transformers` the torch `LLMTrainer`
(causal LM + LoRA). torch is imported only when the transformers backend is asked for, so the
built-in path — and everything that only validates configs — runs without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from agentcore.api.training import GRPOConfig, PolicyBackend
from agentcore.cost import DEFAULT_PRICES, Price, price_for_model
from agentcore_trainer.algorithm import grpo
from agentcore_trainer.algorithm.grpo import AlgoConfig
from agentcore_trainer.algorithm.trainer import IterationReport, Trainer, TrainerState
from agentcore_trainer.distributed import SINGLE, Collective
from agentcore_trainer.evaluation.metrics import EvaluationResult, comparison_body, evaluate
from agentcore_trainer.policies.builtin import DEFAULT_LEARNING_RATE, DEFAULT_MAX_KL
from agentcore_trainer.rewards import RewardSpec

if TYPE_CHECKING:  # torch is imported only when the transformers backend is asked for
    from agentcore_trainer.algorithm.llm_trainer import LLMTrainer  # noqa: F401  (LLMBackend's base)


@dataclass(frozen=True)
class Usage:
    """Tokens a piece of work read and wrote (metered like training rollouts)."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class RunShape:
    """The parts of a run every backend needs."""

    config: GRPOConfig
    queries: Sequence[Mapping[str, Any]]
    seed: int
    run_id: str = ""
    namespace: str = ""
    comm: Collective = SINGLE  # the run's ranks (one by default)


class Backend(Protocol):
    price: Price
    device_price_per_hour: Decimal
    checkpoint_suffix: str  # the state blob's format, as the checkpoint's object name shows it

    @property
    def iteration(self) -> int: ...

    @property
    def counters(self) -> dict[str, int]: ...

    def step(self) -> IterationReport: ...

    def checkpoint(self) -> bytes: ...

    def evaluate(
        self, queries: Sequence[Mapping[str, Any]], *, trained: bool = True
    ) -> tuple[EvaluationResult, Usage]:
        """Greedy evaluation of the trained policy, or (trained=False) of the initial one."""
        ...


# GRPOConfig.learning_rate when unset: it is the Adam step size for every backend, but the step
# that suits a 17-way softmax over hashed features is not the one that suits LoRA weights.
DEFAULT_LEARNING_RATES: dict[PolicyBackend, float] = {
    PolicyBackend.BUILTIN: DEFAULT_LEARNING_RATE,  # see policies/builtin.py's docstring
    PolicyBackend.TRANSFORMERS: 1e-4,  # the spec's value, a common LoRA fine-tuning step
}


# The trust region of every update (AlgoConfig.max_kl): the built-in policy's large logit scale
# needs it; the LLM loop keeps TRL's semantics (clipping and the KL penalty only).
MAX_KL: dict[PolicyBackend, float | None] = {
    PolicyBackend.BUILTIN: DEFAULT_MAX_KL,
    PolicyBackend.TRANSFORMERS: None,
}


def algo_config(config: GRPOConfig) -> AlgoConfig:
    lr = config.learning_rate
    return AlgoConfig(
        learning_rate=DEFAULT_LEARNING_RATES[config.policy.backend] if lr is None else lr,
        max_kl=MAX_KL[config.policy.backend],
        epsilon_low=config.epsilon_low,
        epsilon_high=config.epsilon_high,
        beta=config.beta,
        num_inner_iterations=config.num_inner_iterations,
        scale_rewards=cast(grpo.ScaleRewards, config.scale_rewards.value),
        loss_type=cast(grpo.LossType, config.loss_type.value),
        max_grad_norm=config.max_grad_norm,
        gamma=config.gamma,
    )


def reward_spec(config: GRPOConfig) -> RewardSpec:
    functions = config.reward_functions or []
    if not functions:
        return RewardSpec.default()
    return RewardSpec.from_entry_points([f.entry_point for f in functions], [f.weight for f in functions])


class _SteppingTrainer(Protocol):
    iteration: int
    counters: dict[str, int]

    def step(self) -> IterationReport: ...


_T = TypeVar("_T", bound=_SteppingTrainer)


class _Delegating(Generic[_T]):
    """What both backends answer straight from their trainer."""

    trainer: _T

    @property
    def iteration(self) -> int:
        return self.trainer.iteration

    @property
    def counters(self) -> dict[str, int]:
        return self.trainer.counters

    def step(self) -> IterationReport:
        return self.trainer.step()


class BuiltinBackend(_Delegating[Trainer]):
    """The numpy trainer; evaluation's baseline is its frozen initial policy."""

    price = DEFAULT_PRICES["builtin-cpu"]
    device_price_per_hour = Decimal("0")
    checkpoint_suffix = ".npz"

    def __init__(self, shape: RunShape, state: bytes | None) -> None:
        cfg = shape.config
        self.config, self.rewards = cfg, reward_spec(cfg)
        self.trainer = Trainer(
            shape.queries, algo_config(cfg), batch_size=cfg.batch_size,
            group_size=cfg.n_trajectories_per_query, max_steps=cfg.max_steps_per_trajectory,
            seed=shape.seed, rewards=self.rewards,
            state=TrainerState.from_bytes(state) if state is not None else None, run_id=shape.run_id,
            comm=shape.comm,
        )  # fmt: skip

    def checkpoint(self) -> bytes:
        return self.trainer.state().to_bytes()

    def evaluate(
        self, queries: Sequence[Mapping[str, Any]], *, trained: bool = True
    ) -> tuple[EvaluationResult, Usage]:
        policy = self.trainer.policy if trained else self.trainer.reference
        result = evaluate(policy, queries, max_steps=self.config.max_steps_per_trajectory,
                          rewards=self.rewards, gamma=self.config.gamma)  # fmt: skip
        return result, Usage()  # the built-in policy's evaluation is not metered (no model calls)


class LLMBackend(_Delegating["LLMTrainer"]):
    """The causal-LM trainer; evaluation's baseline is the model with its adapter disabled."""

    checkpoint_suffix = ".zip"  # the blob is a zip that is a PEFT adapter directory

    def __init__(self, shape: RunShape, state: bytes | None) -> None:
        try:
            import torch  # noqa: F401  (only to say clearly what is missing)
        except ImportError as exc:
            raise ValueError(
                "policy.backend transformers needs the trainer's llm extra in the trainer image "
                "(pip install 'agentcore-trainer[llm]', or build with --build-arg TRAINER_EXTRAS=llm)"
            ) from exc
        from agentcore_trainer.algorithm.llm_trainer import LLMTrainer
        from agentcore_trainer.environments.toolcalls import Toolbox
        from agentcore_trainer.policies.causal_lm import CausalLMPolicy
        from agentcore_trainer.policies.weights import resolve

        cfg = shape.config
        policy_cfg = cfg.policy
        assert policy_cfg.model is not None  # the model validator guarantees it for this backend
        model = resolve(policy_cfg.model, shape.namespace)
        policy = CausalLMPolicy(policy_cfg, model, shape.seed, keep_reference=policy_cfg.adapter is None)
        self.price = price_for_model(model.name)
        self.device_price_per_hour = policy_cfg.device_price_per_hour_usd
        self.trainer = LLMTrainer(
            shape.queries, algo_config(cfg), policy=policy,
            toolbox=Toolbox.build(cfg.tools or [], policy_cfg.system_prompt),
            batch_size=cfg.batch_size, group_size=cfg.n_trajectories_per_query,
            max_steps=cfg.max_steps_per_trajectory, seed=shape.seed, rewards=reward_spec(cfg),
            state=state, run_id=shape.run_id, comm=shape.comm,
        )  # fmt: skip

    def checkpoint(self) -> bytes:
        return self.trainer.checkpoint()

    def evaluate(
        self, queries: Sequence[Mapping[str, Any]], *, trained: bool = True
    ) -> tuple[EvaluationResult, Usage]:
        result, n_in, n_out = self.trainer.evaluate(queries, adapter=trained)
        return result, Usage(n_in, n_out)


def make_backend(shape: RunShape, state: bytes | None = None) -> Backend:
    if shape.config.policy.backend == PolicyBackend.TRANSFORMERS:
        return LLMBackend(shape, state)
    return BuiltinBackend(shape, state)


def evaluate_against_initial(
    backend: Backend, queries: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, Any], Usage]:
    """The body of a training.evaluate result: the trained policy against the initial one."""
    trained, used = backend.evaluate(queries, trained=True)
    baseline, used_base = backend.evaluate(queries, trained=False)
    body = comparison_body(trained, baseline)
    usage = Usage(used.input_tokens + used_base.input_tokens, used.output_tokens + used_base.output_tokens)
    return body, usage
