"""GRPO math in numpy: group-relative advantages, the clipped objective with a k3 KL penalty,
grpo/dapo/dr_grpo aggregation, Adam and gradient-norm clipping.

Follows DeepSeekMath (arXiv 2402.03300) §4 and TRL's GRPOTrainer docs
(https://huggingface.co/docs/trl/grpo_trainer).  Arrays
of per-action quantities are padded 2-D `(n_sequences, max_steps)` with a 0/1 `mask`, so every
aggregation is a weighted sum and its gradient is the same weights (no autograd needed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

ScaleRewards = Literal["group", "batch", "none"]
LossType = Literal["grpo", "dapo", "dr_grpo"]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
STD_EPS = 1e-4  # added to the std before dividing (TRL/veRL use this value)
TIE_TOL = 1e-12  # rewards closer than this count as a tie: the group carries no signal


@dataclass(frozen=True)
class AlgoConfig:
    """The algorithm knobs of GRPOConfig that the math needs (the glue maps one to the other).

    `learning_rate` is the Adam step size on the policy's parameters, as given, for every policy;
    the default is the built-in policy's (`policies.builtin.DEFAULT_LEARNING_RATE`).  `max_kl`,
    unless None, is a trust region: every optimizer step is halved until the mean KL(πold‖πθ) over
    the batch's states is at most `max_kl` (see `Trainer._update`).
    """

    learning_rate: float = 0.01
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    beta: float = 0.04
    num_inner_iterations: int = 1
    scale_rewards: ScaleRewards = "group"
    loss_type: LossType = "dapo"
    max_grad_norm: float = 1.0
    gamma: float = 0.99
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    max_kl: float | None = 0.01  # the built-in policy's (policies.builtin.DEFAULT_MAX_KL)

    def __post_init__(self) -> None:
        if self.scale_rewards not in ("group", "batch", "none"):
            raise ValueError(f"scale_rewards must be group, batch or none, not {self.scale_rewards!r}")
        if self.loss_type not in ("grpo", "dapo", "dr_grpo"):
            raise ValueError(f"loss_type must be grpo, dapo or dr_grpo, not {self.loss_type!r}")
        if not (0.0 <= self.epsilon_low < 1.0 and self.epsilon_high >= 0.0):
            raise ValueError("need 0 <= epsilon_low < 1 and epsilon_high >= 0")
        if self.beta < 0.0 or self.learning_rate < 0.0 or self.max_grad_norm <= 0.0:
            raise ValueError("beta and learning_rate must be >= 0, max_grad_norm > 0")
        if self.num_inner_iterations < 1 or not 0.0 <= self.gamma <= 1.0:
            raise ValueError("num_inner_iterations must be >= 1 and gamma in [0, 1]")
        if self.max_kl is not None and not self.max_kl > 0.0:
            raise ValueError("max_kl must be > 0 (or None: no trust region)")


# ---------------------------------------------------------------------------------------------
# Advantages


@dataclass(frozen=True)
class Advantages:
    advantages: FloatArray  # (n_groups, G): what the loss uses
    normalized: FloatArray  # (n_groups, G): the within-group z-score, whatever scale_rewards is
    zero_std: BoolArray  # (n_groups,): groups whose valid rewards all tie
    frac_reward_zero_std: float


def group_advantages(
    rewards: FloatArray,
    scale_rewards: ScaleRewards = "group",
    valid: BoolArray | None = None,
    ddof: int = 1,
) -> Advantages:
    """Â = (r - mean_group) / (std + 1e-4), with std per group, over the batch, or none.

    `valid` excludes trajectories (e.g. whose reward function raised) from the statistics and gives
    them Â = 0.  `ddof=1` is TRL's sample std; a group with fewer than two valid members, or whose
    rewards tie, gets Â = 0 (no comparison is possible) and is counted in frac_reward_zero_std.
    """
    r = np.asarray(rewards, dtype=np.float64)
    v = np.ones_like(r, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    count = v.sum(axis=1)
    mean = np.where(v, r, 0.0).sum(axis=1) / np.maximum(count, 1)
    dev = np.where(v, r - mean[:, None], 0.0)
    group_std = np.sqrt((dev**2).sum(axis=1) / np.maximum(count - ddof, 1))
    spread = np.where(v, r, -np.inf).max(axis=1) - np.where(v, r, np.inf).min(axis=1)
    zero_std = (count < 2) | ~(spread > TIE_TOL)
    normalized = dev / (group_std[:, None] + STD_EPS)
    if scale_rewards == "group":
        adv = normalized
    elif scale_rewards == "batch":
        adv = dev / (_batch_std(r, v, ddof) + STD_EPS)
    else:
        adv = dev  # Dr. GRPO: no std division, so easy/hard groups are not re-weighted
    keep = v & ~zero_std[:, None]
    frac = float(zero_std.mean()) if zero_std.size else 0.0
    return Advantages(np.where(keep, adv, 0.0), np.where(keep, normalized, 0.0), zero_std, frac)


def _batch_std(r: FloatArray, v: BoolArray, ddof: int) -> float:
    values = r[v]
    return float(values.std(ddof=ddof)) if values.size > ddof else 0.0


# ---------------------------------------------------------------------------------------------
# Loss


@dataclass(frozen=True)
class LossOutput:
    loss: float
    grad_logp: FloatArray  # dLoss/dlogπθ per action, shape of the inputs, 0 where masked
    metrics: dict[str, float]


@dataclass(frozen=True)
class BatchTotals:
    """Sizes of the whole batch when `mask` holds one rank's share of it: the aggregation then
    gives that share's part of the global loss, and the parts sum (all-reduce) to it exactly."""

    sequences: int
    actions: float


def aggregation_weights(
    mask: FloatArray, loss_type: LossType, totals: BatchTotals | None = None
) -> FloatArray:
    """w such that loss = Σ w·L (and dLoss/dL = w) for each aggregation."""
    m = np.asarray(mask, dtype=np.float64)
    if loss_type == "dapo":  # token mean over the whole batch
        return m / max(float(m.sum()) if totals is None else totals.actions, 1.0)
    n_seq = max(m.shape[0] if totals is None else totals.sequences, 1)
    if loss_type == "grpo":  # mean per sequence, then mean over sequences
        return m / (n_seq * np.maximum(m.sum(axis=1, keepdims=True), 1.0))
    return m / (n_seq * m.shape[1])  # dr_grpo: a constant normaliser G·L_max


def grpo_loss(
    logp: FloatArray,
    logp_old: FloatArray,
    logp_ref: FloatArray,
    advantages: FloatArray,
    mask: FloatArray,
    config: AlgoConfig,
    totals: BatchTotals | None = None,
) -> LossOutput:
    """The clipped GRPO objective plus β·k3-KL, aggregated per `config.loss_type`.

    All per-action arrays are (n_sequences, max_steps); `advantages` may be (n_sequences,) and is
    broadcast over steps (outcome supervision).  Returns the loss, its gradient with respect to
    logπθ of every action, and TRL-named metrics. With `totals` (one rank's share of a batch) the
    loss, gradient and metrics are that share's parts of the batch's: summed over ranks they are
    the batch's.
    """
    m = np.asarray(mask, dtype=np.float64)
    on = m > 0
    adv = np.asarray(advantages, dtype=np.float64)
    adv = np.broadcast_to(adv[:, None] if adv.ndim == 1 else adv, m.shape)
    # Padded entries may hold anything; zero them so exp() cannot overflow there.
    lp, lp_old, lp_ref = (np.where(on, x, 0.0) for x in (logp, logp_old, logp_ref))
    ratio = np.exp(lp - lp_old)
    lo, hi = 1.0 - config.epsilon_low, 1.0 + config.epsilon_high
    per_action = -np.minimum(ratio * adv, np.clip(ratio, lo, hi) * adv)
    # The min picks the constant clipped branch exactly in these two cases: no gradient there.
    clipped_low = on & (ratio < lo) & (adv < 0)
    clipped_high = on & (ratio > hi) & (adv > 0)
    grad = np.where(clipped_low | clipped_high, 0.0, -adv * ratio)
    delta = lp_ref - lp
    kl = np.exp(delta) - delta - 1.0  # k3 estimator of KL(πθ‖πref), always >= 0
    if config.beta:
        per_action = per_action + config.beta * kl
        grad = grad + config.beta * (1.0 - np.exp(delta))
    w = aggregation_weights(m, config.loss_type, totals)
    n_on = max(float(m.sum()) if totals is None else totals.actions, 1.0)
    metrics = {
        "policy_loss": float((w * per_action).sum()),
        "kl": float((m * kl).sum() / n_on),
        "clip_ratio/low_mean": float(clipped_low.sum() / n_on),
        "clip_ratio/high_mean": float(clipped_high.sum() / n_on),
        "clip_ratio/region_mean": float((clipped_low | clipped_high).sum() / n_on),
        "ratio_mean": float((m * ratio).sum() / n_on),
    }
    return LossOutput(metrics["policy_loss"], w * grad, metrics)


# ---------------------------------------------------------------------------------------------
# Optimisation


def kl_terms(logp_old: FloatArray, logp_new: FloatArray, weights: FloatArray) -> float:
    """Σₛ wₛ·KL(πold(·|s) ‖ πnew(·|s)) from full log-distributions of shape (n_states, n_actions);
    actions πold never takes (log-probability -inf) contribute nothing."""
    p_old = np.exp(logp_old)
    with np.errstate(invalid="ignore"):  # -inf - -inf where πold is 0: masked out just below
        diff = np.where(p_old > 0.0, logp_old - logp_new, 0.0)
    return float(np.einsum("s,sa,sa->", np.asarray(weights, dtype=np.float64), p_old, diff))


def clip_grad_norm(grad: FloatArray, max_norm: float) -> tuple[FloatArray, float]:
    """Scale `grad` so its L2 norm is at most `max_norm`; returns (grad, norm before clipping)."""
    flat = grad.ravel()
    # einsum rather than a BLAS dot: threaded BLAS is slow on small, busy machines.
    norm = float(np.sqrt(np.einsum("i,i->", flat, flat)))
    if norm > max_norm and norm > 0.0:
        return grad * (max_norm / norm), norm
    return grad, norm


class Adam:
    """Adam (Kingma & Ba) with bias correction; state is plain arrays for checkpoints."""

    def __init__(
        self, shape: tuple[int, ...], lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = np.zeros(shape, dtype=np.float64)
        self.v = np.zeros(shape, dtype=np.float64)
        self.t = 0

    def step(self, params: FloatArray, grad: FloatArray) -> None:
        """Update `params` in place (so a policy's live parameter array changes).

        θ ← θ - lr·m̂/(√v̂ + eps) with m̂ = m/(1-β₁ᵗ), v̂ = v/(1-β₂ᵗ); computed in one scratch
        buffer because the parameter arrays are large and the update runs every inner iteration.
        """
        self.t += 1
        self.m *= self.beta1
        self.m += (1.0 - self.beta1) * grad
        self.v *= self.beta2
        self.v += (1.0 - self.beta2) * np.square(grad)
        denom = np.sqrt(self.v / (1.0 - self.beta2**self.t))
        denom += self.eps
        np.divide(self.m, denom, out=denom)
        denom *= self.lr / (1.0 - self.beta1**self.t)
        params -= denom

    def state_dict(self) -> dict[str, NDArray[Any]]:
        return {"m": self.m.copy(), "v": self.v.copy(), "t": np.array(self.t, dtype=np.int64)}

    def load_state_dict(self, state: Mapping[str, NDArray[Any]]) -> None:
        if state["m"].shape != self.m.shape or state["v"].shape != self.v.shape:
            raise ValueError("optimizer state does not match the parameter shape")
        self.m = np.array(state["m"], dtype=np.float64)
        self.v = np.array(state["v"], dtype=np.float64)
        self.t = int(state["t"])
