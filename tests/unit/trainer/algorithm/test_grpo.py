"""GRPO math: advantages, the loss gradient (analytic vs central differences), Adam, clipping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from agentcore_trainer.algorithm.grpo import (
    STD_EPS,
    Adam,
    AlgoConfig,
    aggregation_weights,
    clip_grad_norm,
    group_advantages,
    grpo_loss,
)
from agentcore_trainer.environments.tooluse import ACTIONS, Observation
from agentcore_trainer.policies.builtin import Encoded, HashedSoftmaxPolicy

LOSS_TYPES = ("grpo", "dapo", "dr_grpo")


# -- advantages ----------------------------------------------------------------------------------


def test_group_advantages_normalise_within_each_group() -> None:
    rewards = np.array([[1.0, 0.0, 0.0, 1.0], [0.2, 0.4, 0.6, 0.8]])
    adv = group_advantages(rewards, "group")
    for row, r in zip(adv.advantages, rewards, strict=True):
        expected = (r - r.mean()) / (r.std(ddof=1) + STD_EPS)
        np.testing.assert_allclose(row, expected)
    assert adv.frac_reward_zero_std == 0.0


def test_tied_groups_get_zero_advantage_and_are_counted() -> None:
    rewards = np.array([[0.5, 0.5, 0.5], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    for scale in ("group", "batch", "none"):
        adv = group_advantages(rewards, scale)
        assert np.all(adv.advantages[:2] == 0.0)
        assert np.all(adv.advantages[2] != 0.0)
        assert adv.zero_std.tolist() == [True, True, False]
        assert adv.frac_reward_zero_std == pytest.approx(2 / 3)


def test_batch_scaling_uses_group_mean_and_batch_std() -> None:
    rewards = np.array([[0.0, 1.0], [0.0, 3.0]])
    adv = group_advantages(rewards, "batch")
    dev = rewards - rewards.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(adv.advantages, dev / (rewards.std(ddof=1) + STD_EPS))


def test_none_scaling_is_mean_centred_only() -> None:
    rewards = np.array([[0.0, 1.0, 2.0]])
    adv = group_advantages(rewards, "none")
    np.testing.assert_allclose(adv.advantages, [[-1.0, 0.0, 1.0]])
    # normalized_reward is always the within-group z-score
    np.testing.assert_allclose(adv.normalized, np.array([[-1.0, 0.0, 1.0]]) / (1.0 + STD_EPS))


def test_invalid_members_are_excluded_and_zeroed() -> None:
    rewards = np.array([[1.0, 0.0, 99.0], [1.0, 5.0, 7.0]])
    valid = np.array([[True, True, False], [True, False, False]])
    adv = group_advantages(rewards, "group", valid)
    np.testing.assert_allclose(adv.advantages[0, :2], np.array([0.5, -0.5]) / (np.sqrt(0.5) + STD_EPS))
    assert adv.advantages[0, 2] == 0.0
    # one valid member: nothing to compare against
    assert np.all(adv.advantages[1] == 0.0) and adv.zero_std.tolist() == [False, True]


def test_single_member_groups_and_empty_batches() -> None:
    assert np.all(group_advantages(np.array([[0.3], [0.9]])).advantages == 0.0)
    empty = group_advantages(np.zeros((0, 4)))
    assert empty.advantages.shape == (0, 4) and empty.frac_reward_zero_std == 0.0


def test_advantages_are_finite_when_all_equal_in_batch_mode() -> None:
    adv = group_advantages(np.ones((3, 4)), "batch")
    assert np.all(np.isfinite(adv.advantages)) and np.all(adv.advantages == 0.0)


# -- loss ------------------------------------------------------------------------------------------


def _loss_inputs(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n_seq, t = 6, 5
    logp = np.log(rng.uniform(0.05, 0.9, size=(n_seq, t)))
    # Ratios spread over [0.5, 1.6] so both clip boundaries are crossed, but not within 0.02 of them.
    ratio = rng.choice(np.r_[np.linspace(0.5, 0.75, 4), np.linspace(0.85, 1.15, 5), np.linspace(1.3, 1.6, 4)],
                       size=(n_seq, t))  # fmt: skip
    logp_old = logp - np.log(ratio)
    logp_ref = logp + rng.normal(0.0, 0.3, size=(n_seq, t))
    adv = rng.normal(0.0, 1.0, size=n_seq)
    lengths = np.array([5, 3, 1, 4, 2, 5])
    mask = (np.arange(t)[None, :] < lengths[:, None]).astype(float)
    return logp, logp_old, logp_ref, adv, mask


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_loss_gradient_wrt_logp_matches_finite_differences(loss_type: str) -> None:
    logp, logp_old, logp_ref, adv, mask = _loss_inputs()
    cfg = AlgoConfig(beta=0.1, epsilon_low=0.2, epsilon_high=0.28, loss_type=loss_type)  # type: ignore[arg-type]
    out = grpo_loss(logp, logp_old, logp_ref, adv, mask, cfg)
    assert out.metrics["clip_ratio/low_mean"] > 0 and out.metrics["clip_ratio/high_mean"] > 0
    h = 1e-6
    numeric = np.zeros_like(logp)
    for idx in np.ndindex(logp.shape):
        plus, minus = logp.copy(), logp.copy()
        plus[idx] += h
        minus[idx] -= h
        f_plus = grpo_loss(plus, logp_old, logp_ref, adv, mask, cfg).loss
        f_minus = grpo_loss(minus, logp_old, logp_ref, adv, mask, cfg).loss
        numeric[idx] = (f_plus - f_minus) / (2 * h)
    np.testing.assert_allclose(out.grad_logp, numeric, rtol=1e-6, atol=1e-9)
    assert np.all(out.grad_logp[mask == 0] == 0.0)


def _policy_batch() -> tuple[HashedSoftmaxPolicy, Encoded, np.ndarray]:
    # Logits of order 1 from weights of order 0.3 (the default scale is for weights near 0).
    policy = HashedSoftmaxPolicy(len(ACTIONS), n_features=64, init_scale=0.3, seed=3, logit_scale=10.0)
    rng = np.random.default_rng(5)
    queries = ["What is 3 plus 4?", "Look up the stock price of Acme.", "Write a function that sorts a list."]
    observations = [
        Observation(queries[i % 3], tuple(int(a) for a in rng.integers(0, len(ACTIONS), size=i % 4)))
        for i in range(6 * 5)
    ]
    actions = rng.integers(0, len(ACTIONS), size=len(observations))
    return policy, policy.encode(observations), actions


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_loss_gradient_wrt_policy_parameters_matches_finite_differences(loss_type: str) -> None:
    """End to end: loss(W) through the policy's log-probs; analytic chain rule vs central differences."""
    policy, enc, actions = _policy_batch()
    _, _, _, adv, mask = _loss_inputs(1)
    cfg = AlgoConfig(beta=0.2, epsilon_low=0.1, epsilon_high=0.1, loss_type=loss_type)  # type: ignore[arg-type]
    shape = mask.shape
    # Freeze logπold at a perturbed copy of the policy so that many ratios are outside the clip range.
    old = policy.copy()
    old.weights += np.random.default_rng(9).normal(0.0, 0.4, size=old.weights.shape)
    ref = HashedSoftmaxPolicy(len(ACTIONS), n_features=64)
    logp_old = old.log_probs(enc, actions).reshape(shape)
    logp_ref = ref.log_probs(enc, actions).reshape(shape)

    def loss_at(w: np.ndarray) -> tuple[float, np.ndarray, dict[str, float]]:
        policy.weights[...] = w
        out = grpo_loss(policy.log_probs(enc, actions).reshape(shape), logp_old, logp_ref, adv, mask, cfg)
        return out.loss, out.grad_logp, out.metrics

    w0 = policy.weights.copy()
    _, grad_logp, metrics = loss_at(w0)
    assert metrics["clip_ratio/region_mean"] > 0.1  # clipping is active in this batch
    analytic = policy.gradient(enc, actions, grad_logp.ravel())
    rng = np.random.default_rng(0)
    touched = np.unique(enc.idx)
    h = 1e-6
    for _ in range(40):
        i, j = int(rng.choice(touched)), int(rng.integers(0, len(ACTIONS)))
        plus, minus = w0.copy(), w0.copy()
        plus[i, j] += h
        minus[i, j] -= h
        numeric = (loss_at(plus)[0] - loss_at(minus)[0]) / (2 * h)
        assert analytic[i, j] == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    policy.weights[...] = w0


def test_first_inner_iteration_has_unit_ratio_and_no_clipping() -> None:
    logp, _, logp_ref, adv, mask = _loss_inputs()
    out = grpo_loss(logp, logp, logp_ref, adv, mask, AlgoConfig(beta=0.0))
    assert out.metrics["clip_ratio/region_mean"] == 0.0
    assert out.metrics["ratio_mean"] == pytest.approx(1.0)


def test_aggregation_weights() -> None:
    mask = np.array([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(aggregation_weights(mask, "dapo"), mask / 4)
    np.testing.assert_allclose(aggregation_weights(mask, "grpo"), mask / np.array([[2 * 3], [2 * 1]]))
    np.testing.assert_allclose(aggregation_weights(mask, "dr_grpo"), mask / (2 * 4))


def test_k3_kl_is_non_negative_and_zero_at_reference() -> None:
    logp, _, _, adv, mask = _loss_inputs()
    assert grpo_loss(logp, logp, logp, adv, mask, AlgoConfig()).metrics["kl"] == 0.0
    shifted = grpo_loss(logp, logp, logp + 0.5, adv, mask, AlgoConfig()).metrics["kl"]
    assert shifted == pytest.approx(np.exp(0.5) - 0.5 - 1)


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        AlgoConfig(loss_type="ppo")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AlgoConfig(scale_rewards="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AlgoConfig(num_inner_iterations=0)


# -- optimisation ---------------------------------------------------------------------------------


def test_adam_matches_the_textbook_update_and_round_trips_state() -> None:
    rng = np.random.default_rng(0)
    params, ref = np.zeros(5), np.zeros(5)
    opt = Adam((5,), lr=0.1)
    m, v = np.zeros(5), np.zeros(5)
    for t in range(1, 4):
        g = rng.normal(size=5)
        opt.step(params, g)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        ref -= 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(params, ref, rtol=1e-12)
    other = Adam((5,), lr=0.1)
    other.load_state_dict(opt.state_dict())
    g = rng.normal(size=5)
    p1, p2 = params.copy(), params.copy()
    opt.step(p1, g)
    other.step(p2, g)
    assert np.array_equal(p1, p2)


def test_clip_grad_norm() -> None:
    g = np.array([[3.0, 4.0]])
    clipped, norm = clip_grad_norm(g, 1.0)
    assert norm == 5.0 and np.allclose(clipped, [[0.6, 0.8]])
    same, norm = clip_grad_norm(g, 10.0)
    assert norm == 5.0 and same is g


@settings(max_examples=200, deadline=None)
@given(
    rewards=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 8)), elements=st.floats(-5, 5)),
    scale=st.sampled_from(["group", "batch", "none"]),
)
def test_advantage_properties(rewards: np.ndarray, scale: str) -> None:
    adv = group_advantages(rewards, scale)  # type: ignore[arg-type]
    assert np.all(np.isfinite(adv.advantages))
    np.testing.assert_allclose(adv.advantages.sum(axis=1), 0.0, atol=1e-6)  # centred per group
    assert np.all(adv.advantages[adv.zero_std] == 0.0)
    ties = (rewards.max(axis=1) - rewards.min(axis=1) <= 1e-12) | (rewards.shape[1] < 2)
    assert np.array_equal(adv.zero_std, ties) and adv.frac_reward_zero_std == pytest.approx(ties.mean())


def test_kl_terms_is_the_weighted_kl_of_the_action_distributions() -> None:
    from agentcore_trainer.algorithm.grpo import kl_terms

    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    q = np.array([[0.25, 0.25, 0.5], [0.2, 0.3, 0.5]])
    with np.errstate(divide="ignore"):
        logp, logq = np.log(p), np.log(q)
    # KL(p‖q) of the first state is log 2 (p never takes the third action); the second is 0.
    assert kl_terms(logp, logq, np.array([0.5, 0.5])) == pytest.approx(0.5 * np.log(2.0))
    assert kl_terms(logp, logp, np.array([1.0, 1.0])) == 0.0
