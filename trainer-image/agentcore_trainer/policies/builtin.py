"""Policies: the interface the trainer needs, and a built-in softmax-linear policy for CPUs.

The built-in policy scores the joint (tool, argument) actions with logits z = Wᵀφ(s), where φ(s) is
a sparse vector of hashed features of the state: the query's words, the previous action,
the step index, and every query word crossed with the previous action and with its group (the
tool), so "times" can mean "calculator" at the start and "answer" after the calculator.  Each of the
n(s) active features has the value c / n(s) (c = `logit_scale`), i.e. z is c times the mean of the
active features' weight rows.
Its gradient is analytic:
∂logπ(a|s)/∂z = onehot(a) - softmax(z), so ∇W = Σₛ φ(s)·(∂L/∂ℓₛ)·(onehot(aₛ) - pₛ)ᵀ.

Why this parametrisation: `learning_rate` is Adam's step size on W for every backend, and Adam
moves each weight by at most about that step, so one step moves any logit by at most about
c · learning_rate, whatever the query's length (with binary features a long query moved ~3x more
than a short one).  A step size alone cannot serve every rate a user tries (1e-4 ... 0.1): at
c = 10, 60·μ steps of 1e-4 move a logit by at most 0.006·μ·c and learn nothing, while a c large
enough for 1e-4 turns 0.1 into logit jumps of ~100 per update, which collapse the policy onto its
first lucky actions.  So the built-in backend pairs a large c (`DEFAULT_LOGIT_SCALE`: one step of
1e-4 moves a logit by up to 1) with a trust region (`DEFAULT_MAX_KL`, applied by
`algorithm.trainer.TrustRegion`): each step is halved until the batch's mean KL to the policy
that sampled it is at most 0.01, so the learning rate sets how many halvings a step needs rather
than how far the policy moves.  Figures: `bench/builtin_learning.py` (the learning-rate grid on
unseen seeds, duplicate-free held-out split).  Small steps also fail for a reason of the task:
one step of improvement on the near-uniform policy favours answering at once (the tool-sequence
partial credit beats a random walk), so greedy evaluation of a policy that barely moved answers
immediately and scores 0.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol, cast, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from agentcore_trainer.environments.tooluse import ACTIONS, Observation

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
TIE_TOL = 1e-12
_MUL_A = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constants for multiplicative hashing
_MUL_B = np.uint64(0xC2B2AE3D27D4EB4F)
_MAX_STEP_FEATURE = 15
_N_FIXED = 4  # bias, previous action, previous action's group, step
DEFAULT_LOGIT_SCALE = 10000.0  # see the module docstring
LEGACY_LOGIT_SCALE = 10.0  # the scale of checkpoints that do not record theirs
DEFAULT_MAX_KL = 0.01  # the trust region of every update (AlgoConfig.max_kl)
DEFAULT_LEARNING_RATE = 0.01  # GRPOConfig.learning_rate when unset


@runtime_checkable
class Policy(Protocol):
    """What the GRPO loop needs from a policy over a discrete action space.

    `encode` turns observations into whatever the policy computes on (kept opaque to the loop, so
    one encoding serves every inner iteration).  `gradient` returns ∂L/∂θ given ∂L/∂logπ(aₛ|sₛ)
    per state, in the shape of `parameters()`, which the optimizer updates in place.
    """

    n_actions: int

    def parameters(self) -> FloatArray: ...

    def encode(self, observations: Sequence[Observation]) -> Any: ...

    def log_probs(self, encoded: Any, actions: IntArray) -> FloatArray: ...

    def log_softmax(self, encoded: Any) -> FloatArray:
        """log π(·|s) of every action, shape (n_states, n_actions) (the trust region's KL)."""
        ...

    def sample(self, encoded: Any, rng: np.random.Generator) -> tuple[IntArray, FloatArray]: ...

    def greedy(self, encoded: Any, rng: np.random.Generator) -> IntArray: ...

    def gradient(self, encoded: Any, actions: IntArray, dloss_dlogp: FloatArray) -> FloatArray: ...

    def entropy(self, encoded: Any) -> FloatArray: ...

    def copy(self) -> Policy: ...

    def state_dict(self) -> dict[str, NDArray[Any]]: ...

    def load_state_dict(self, state: Mapping[str, NDArray[Any]]) -> None: ...


class Encoded(NamedTuple):
    """Sparse features: state s owns idx[starts[s]:starts[s+1]] (owner[k] is the state of idx[k])."""

    idx: NDArray[np.intp]
    owner: NDArray[np.intp]
    starts: NDArray[np.intp]
    scale: FloatArray  # per state: the value of each of its active features


def tokenize(text: str) -> list[str]:
    """Lower-case words; every number becomes `<num>` so random operands do not become features."""
    words = re.findall(r"[a-z]+|\d+", text.lower())
    return ["<num>" if w.isdigit() else w for w in words] or ["<empty>"]


def stable_hash(text: str) -> np.uint64:
    """64-bit hash that is the same in every process (Python's `hash` of str is salted)."""
    return np.uint64(int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big"))


def _mix(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> NDArray[np.uint64]:
    # uint64 products wrap around, which is what a multiplicative hash wants.
    with np.errstate(over="ignore"):
        return (a ^ (b * _MUL_B)) * _MUL_A


class HashedSoftmaxPolicy:
    """Softmax-linear policy over hashed state features (see the module docstring).

    `n_features` must be a power of two (indices are the top bits of 64-bit hashes).  Parameters
    start at zero by default, so the initial policy is uniform: evaluation breaks the resulting ties
    at random with a fixed seed (greedy would otherwise always pick action 0).
    """

    def __init__(
        self,
        n_actions: int,
        n_features: int = 2**14,
        action_groups: Sequence[int] | None = None,
        init_scale: float = 0.0,
        seed: int = 0,
        logit_scale: float = DEFAULT_LOGIT_SCALE,
    ) -> None:
        if n_features < 2 or n_features & (n_features - 1):
            raise ValueError("n_features must be a power of two")
        groups = list(range(n_actions)) if action_groups is None else [int(g) for g in action_groups]
        if len(groups) != n_actions:
            raise ValueError("action_groups needs one group id per action")
        self.n_actions, self.n_features = n_actions, n_features
        if logit_scale <= 0.0:
            raise ValueError("logit_scale must be > 0")
        self.logit_scale = logit_scale
        self._shift = np.uint64(64 - (n_features.bit_length() - 1))
        rng = np.random.default_rng(seed)
        self.weights: FloatArray = init_scale * rng.standard_normal((n_features, n_actions))
        self._token_cache: dict[str, NDArray[np.uint64]] = {}
        # Index 0 is "no previous action"; the group (e.g. the tool of a (tool, arg) action) lets
        # "word x previous tool" features generalise across the arguments of that tool.
        prev = [stable_hash(f"prev={a}") for a in range(-1, n_actions)]
        self._prev_hash = np.array(prev, dtype=np.uint64)
        group = [stable_hash("group=none")] + [stable_hash(f"group={g}") for g in groups]
        self._group_hash = np.array(group, dtype=np.uint64)
        steps = [stable_hash(f"step={t}") for t in range(_MAX_STEP_FEATURE + 1)]
        self._step_idx = self._bucket(np.array(steps, dtype=np.uint64))
        self._bias_idx = int(stable_hash("bias") >> self._shift)

    # -- features ----------------------------------------------------------------------------

    def _tokens(self, query: str) -> NDArray[np.uint64]:
        cached = self._token_cache.get(query)
        if cached is None:
            cached = np.array([stable_hash(f"w={w}") for w in tokenize(query)], dtype=np.uint64)
            self._token_cache[query] = cached
        return cached

    def encode(self, observations: Sequence[Observation]) -> Encoded:
        """Per state, contiguous: [bias, prev action, prev group, step, words, wordsxprev action,
        wordsxprev group]."""
        n = len(observations)
        toks = [self._tokens(o.query) for o in observations]
        lengths = np.array([len(t) for t in toks], dtype=np.intp)
        prev = np.array([o.prev_action + 1 for o in observations], dtype=np.intp)
        step = np.minimum(np.array([o.step for o in observations], dtype=np.intp), _MAX_STEP_FEATURE)
        words = np.concatenate(toks) if toks else np.zeros(0, dtype=np.uint64)
        owner = np.repeat(np.arange(n), lengths)
        per_state = _N_FIXED + 3 * lengths
        starts = np.cumsum(per_state) - per_state
        idx = np.empty(int(per_state.sum()), dtype=np.intp)
        idx[starts] = self._bias_idx
        idx[starts + 1] = self._bucket(self._prev_hash[prev])
        idx[starts + 2] = self._bucket(self._group_hash[prev])
        idx[starts + 3] = self._step_idx[step]
        pos = starts[owner] + _N_FIXED + np.arange(words.size) - (np.cumsum(lengths) - lengths)[owner]
        idx[pos] = self._bucket(words)
        idx[pos + lengths[owner]] = self._bucket(_mix(words, self._prev_hash[prev[owner]]))
        idx[pos + 2 * lengths[owner]] = self._bucket(_mix(words, self._group_hash[prev[owner]]))
        # Mean over the active features, so a state's logits move as much as any other state's
        # whatever the query's length (see the class docstring).
        scale = self.logit_scale / per_state.astype(np.float64)
        return Encoded(idx, np.repeat(np.arange(n), per_state), starts, scale)

    def _bucket(self, hashes: NDArray[np.uint64]) -> NDArray[np.intp]:
        return (hashes >> self._shift).astype(np.intp)

    # -- forward -----------------------------------------------------------------------------

    def logits(self, enc: Encoded) -> FloatArray:
        if enc.starts.size == 0:
            return np.zeros((0, self.n_actions))
        return np.add.reduceat(self.weights[enc.idx], enc.starts, axis=0) * enc.scale[:, None]

    def log_softmax(self, enc: Encoded) -> FloatArray:
        z = self.logits(enc)
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def log_probs(self, encoded: Encoded, actions: IntArray) -> FloatArray:
        logp = self.log_softmax(encoded)
        return logp[np.arange(logp.shape[0]), actions]

    def sample(self, encoded: Encoded, rng: np.random.Generator) -> tuple[IntArray, FloatArray]:
        """Inverse-CDF sampling: one uniform draw per state, so the RNG stream is easy to replay."""
        logp = self.log_softmax(encoded)
        cdf = np.cumsum(np.exp(logp), axis=1)
        u = rng.random((logp.shape[0],))
        actions = np.minimum((cdf < u[:, None] * cdf[:, -1:]).sum(axis=1), self.n_actions - 1)
        return actions.astype(np.int64), logp[np.arange(logp.shape[0]), actions]

    def greedy(self, encoded: Encoded, rng: np.random.Generator) -> IntArray:
        """Arg-max with ties broken uniformly at random by `rng` (fixed seed in evaluation)."""
        z = self.logits(encoded)
        tied = z >= z.max(axis=1, keepdims=True) - TIE_TOL
        return np.argmax(np.where(tied, rng.random(z.shape), -1.0), axis=1).astype(np.int64)

    def entropy(self, encoded: Encoded) -> FloatArray:
        logp = self.log_softmax(encoded)
        return -(np.exp(logp) * logp).sum(axis=1)

    # -- backward ----------------------------------------------------------------------------

    def gradient(self, encoded: Encoded, actions: IntArray, dloss_dlogp: FloatArray) -> FloatArray:
        """∇W L = Σₛ φ(s)·(∂L/∂ℓₛ)·(onehot(aₛ) - pₛ)ᵀ, scattered with one bincount."""
        probs = np.exp(self.log_softmax(encoded))
        dz = -probs
        dz[np.arange(dz.shape[0]), actions] += 1.0
        dz *= np.asarray(dloss_dlogp, dtype=np.float64)[:, None] * encoded.scale[:, None]
        rows = dz[encoded.owner]  # (n_features_active, n_actions)
        flat = (encoded.idx[:, None] * self.n_actions + np.arange(self.n_actions)).ravel()
        grad = np.bincount(flat, weights=rows.ravel(), minlength=self.weights.size)
        return cast(FloatArray, grad.reshape(self.weights.shape))  # float: weights were given

    # -- state -------------------------------------------------------------------------------

    def parameters(self) -> FloatArray:
        return self.weights

    def copy(self) -> HashedSoftmaxPolicy:
        clone = HashedSoftmaxPolicy.__new__(HashedSoftmaxPolicy)
        clone.__dict__.update(self.__dict__)
        clone.weights = self.weights.copy()
        return clone

    def state_dict(self) -> dict[str, NDArray[Any]]:
        return {"weights": self.weights.copy(), "logit_scale": np.array(self.logit_scale)}

    def load_state_dict(self, state: Mapping[str, NDArray[Any]]) -> None:
        """The weights and the logit scale they were trained with: a checkpoint written before the
        scale was saved used LEGACY_LOGIT_SCALE, so it computes the same logits as when saved."""
        weights = np.asarray(state["weights"], dtype=np.float64)
        if weights.shape != self.weights.shape:
            raise ValueError(f"weights of shape {weights.shape} do not fit a policy of {self.weights.shape}")
        scale = float(state["logit_scale"]) if "logit_scale" in state else LEGACY_LOGIT_SCALE
        if not scale > 0.0:
            raise ValueError("logit_scale must be > 0")
        # Copy into the live array: an optimizer may hold a reference to it.
        self.weights[...] = weights
        self.logit_scale = scale


def builtin_policy(
    n_features: int = 2**14, init_scale: float = 0.0, seed: int = 0, **options: Any
) -> HashedSoftmaxPolicy:
    """The built-in policy for the built-in environment: actions grouped by their tool."""
    tools = list(dict.fromkeys(tool for tool, _ in ACTIONS))
    groups = [tools.index(tool) for tool, _ in ACTIONS]
    return HashedSoftmaxPolicy(len(ACTIONS), n_features, groups, init_scale, seed, **options)
