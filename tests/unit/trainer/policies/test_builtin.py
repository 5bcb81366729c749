"""The built-in softmax-linear policy: features, sampling, tie-breaking, gradient, state."""

from __future__ import annotations

import numpy as np
import pytest

from agentcore_trainer.environments.tooluse import ACTIONS, Observation
from agentcore_trainer.policies.builtin import HashedSoftmaxPolicy, Policy, builtin_policy, tokenize


def _observations() -> list[Observation]:
    return [
        Observation("What is 12 times 4?"),
        Observation("What is 12 times 4?", (5,)),
        Observation("Look up the stock price of Acme, then add 3 to it.", (1, 6)),
        Observation(""),
    ]


def test_builtin_policy_satisfies_the_protocol_and_starts_uniform() -> None:
    policy = builtin_policy()
    assert isinstance(policy, Policy)
    logp = policy.log_softmax(policy.encode(_observations()))
    np.testing.assert_allclose(logp, np.log(1 / len(ACTIONS)))


def test_tokenize_maps_numbers_to_one_token() -> None:
    assert tokenize("What is 12 times 40?") == ["what", "is", "<num>", "times", "<num>"]
    assert tokenize("") == ["<empty>"]


def test_features_depend_on_history_and_are_stable_across_instances() -> None:
    a, b = HashedSoftmaxPolicy(17), HashedSoftmaxPolicy(17)
    enc_a, enc_b = a.encode(_observations()), b.encode(_observations())
    assert np.array_equal(enc_a.idx, enc_b.idx)
    first, second = (set(enc_a.idx[enc_a.owner == s].tolist()) for s in (0, 1))
    assert first != second  # same query, different previous action


def test_sampling_is_reproducible_for_a_seed() -> None:
    policy = HashedSoftmaxPolicy(17, n_features=256, init_scale=1.0, seed=1)
    enc = policy.encode(_observations() * 50)
    a1, lp1 = policy.sample(enc, np.random.default_rng(7))
    a2, lp2 = policy.sample(enc, np.random.default_rng(7))
    assert np.array_equal(a1, a2) and np.array_equal(lp1, lp2)
    np.testing.assert_allclose(lp1, policy.log_probs(enc, a1))


def test_sampling_follows_the_policy_distribution() -> None:
    policy = HashedSoftmaxPolicy(4, n_features=16, init_scale=0.0)
    policy.weights[:, 2] = 0.5  # every active feature votes for action 2
    enc = policy.encode([Observation("a b")] * 20000)
    actions, _ = policy.sample(enc, np.random.default_rng(0))
    probs = np.exp(policy.log_softmax(enc)[0])
    freq = np.bincount(actions, minlength=4) / actions.size
    np.testing.assert_allclose(freq, probs, atol=0.015)


def test_greedy_breaks_ties_at_random_with_a_fixed_seed() -> None:
    policy = builtin_policy()
    enc = policy.encode([Observation("same query")] * 400)
    picks = policy.greedy(enc, np.random.default_rng(3))
    assert len(set(picks.tolist())) == len(ACTIONS)  # not always action 0
    assert np.array_equal(picks, policy.greedy(enc, np.random.default_rng(3)))
    policy.weights[:, 4] = 1.0
    assert set(policy.greedy(enc, np.random.default_rng(3)).tolist()) == {4}


def test_log_prob_gradient_matches_finite_differences() -> None:
    policy = HashedSoftmaxPolicy(len(ACTIONS), n_features=32, init_scale=0.5, seed=2)
    enc = policy.encode(_observations())
    actions = np.array([3, 16, 0, 7])
    coeff = np.array([0.7, -1.2, 0.4, 2.0])  # L = Σ c·logπ(a|s), so ∂L/∂logπ = c
    analytic = policy.gradient(enc, actions, coeff)
    w0, h = policy.weights.copy(), 1e-6
    for i, j in [(int(i), j) for i in np.unique(enc.idx)[:12] for j in (0, 3, 7, 16)]:
        values = []
        for sign in (1, -1):
            policy.weights[...] = w0
            policy.weights[i, j] += sign * h
            values.append(float((coeff * policy.log_probs(enc, actions)).sum()))
        assert analytic[i, j] == pytest.approx((values[0] - values[1]) / (2 * h), rel=1e-6, abs=1e-9)


def test_state_dict_round_trip_and_shape_check() -> None:
    policy = HashedSoftmaxPolicy(17, n_features=64, init_scale=1.0, seed=4)
    other = HashedSoftmaxPolicy(17, n_features=64)
    live = other.parameters()
    other.load_state_dict(policy.state_dict())
    assert np.array_equal(other.weights, policy.weights) and other.parameters() is live
    with pytest.raises(ValueError):
        HashedSoftmaxPolicy(17, n_features=128).load_state_dict(policy.state_dict())
    with pytest.raises(ValueError):
        HashedSoftmaxPolicy(17, n_features=100)


def test_copy_is_independent() -> None:
    policy = HashedSoftmaxPolicy(17, n_features=64)
    clone = policy.copy()
    clone.weights += 1.0
    assert np.all(policy.weights == 0.0)


@pytest.mark.parametrize("lr", [1e-3, 0.05])
def test_one_adam_step_moves_every_logit_by_at_most_logit_scale_times_lr(lr: float) -> None:
    """The parametrisation the module docstring argues from: features are c / n(s), so a step of
    lr on every weight moves a logit by at most c·lr for short and long queries alike; and the
    trainer's optimizer uses the learning rate as given (no hidden scale; the trust region only
    shortens a step)."""
    from agentcore_trainer.algorithm.grpo import Adam, AlgoConfig
    from agentcore_trainer.algorithm.trainer import Trainer
    from agentcore_trainer.datasets import generate

    policy = builtin_policy()
    enc = policy.encode(_observations())
    before = policy.logits(enc)
    adam = Adam(policy.parameters().shape, lr)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, len(ACTIONS), size=len(_observations()))
    adam.step(policy.parameters(), policy.gradient(enc, actions, rng.standard_normal(actions.size)))
    moved = np.abs(policy.logits(enc) - before).max(axis=1)
    assert np.all(moved <= policy.logit_scale * lr * (1 + 1e-6)) and np.all(
        moved > 0.1 * policy.logit_scale * lr
    )
    trainer = Trainer(generate(5, seed=1), AlgoConfig(learning_rate=lr), batch_size=1, group_size=2,
                      max_steps=2, seed=0)  # fmt: skip
    assert trainer.optimizer.lr == lr


def test_an_unset_learning_rate_is_the_builtin_default_and_a_set_one_is_kept() -> None:
    from agentcore.api.training import GRPOConfig
    from agentcore_trainer.algorithm.grpo import AlgoConfig
    from agentcore_trainer.policies.builtin import DEFAULT_LEARNING_RATE
    from agentcore_trainer.runtime.backends import algo_config

    assert algo_config(GRPOConfig()).learning_rate == DEFAULT_LEARNING_RATE == AlgoConfig().learning_rate
    assert algo_config(GRPOConfig(learning_rate=0.0001)).learning_rate == 0.0001  # the spec's value


def test_a_checkpoint_keeps_its_logit_scale_and_an_old_one_its_legacy_scale() -> None:
    from agentcore_trainer.policies.builtin import LEGACY_LOGIT_SCALE

    trained = HashedSoftmaxPolicy(17, n_features=64, init_scale=0.01, seed=4, logit_scale=250.0)
    restored = HashedSoftmaxPolicy(17, n_features=64)
    restored.load_state_dict(trained.state_dict())
    enc = trained.encode(_observations())
    np.testing.assert_array_equal(restored.logits(restored.encode(_observations())), trained.logits(enc))
    # A checkpoint written before the scale was saved holds only the weights, trained at 10.
    legacy = HashedSoftmaxPolicy(17, n_features=64, init_scale=0.3, seed=4, logit_scale=LEGACY_LOGIT_SCALE)
    old_format = {"weights": legacy.state_dict()["weights"]}
    restored.load_state_dict(old_format)
    expected = legacy.logits(legacy.encode(_observations()))
    np.testing.assert_array_equal(restored.logits(restored.encode(_observations())), expected)
    with pytest.raises(ValueError, match="logit_scale"):
        restored.load_state_dict({**old_format, "logit_scale": np.array(0.0)})
