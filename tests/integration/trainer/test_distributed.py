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
# aggregation and scaling that needs a whole-batch total (dapo's token count, batch std).
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
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
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
    assert np.abs(after - before).max() > 1e-3  # the update moved the parameters

    (rank0, out0), (rank1, out1) = _two_workers(tmp_path, algo)
    np.testing.assert_allclose(rank0, after, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(rank0, rank1)  # every rank takes the same step
    # The same trajectories (ids, rewards) in the same order, and the same batch metrics.
    assert out0["ids"] == [r["trajectory_id"] for r in report.trajectories] == out1["ids"]
    assert out0["rewards"] == [r["reward"] for r in report.trajectories]
    for key in ("train_loss", "kl", "grad_norm", "avg_reward", "entropy", "trajectories", "input_tokens"):
        assert out0["metrics"][key] == pytest.approx(report.metrics[key], rel=1e-9, abs=1e-12), key
