"""The `agentcore` console script's contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

AGENTCORE = str(Path(sys.executable).parent / "agentcore")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AGENTCORE, *args], capture_output=True, text=True, timeout=60)


def test_subcommands_exist():
    out = run("--help").stdout
    for command in ("dev", "operator", "api", "trainer", "datasets"):
        assert command in out


def test_datasets_generate_to_stdout_and_files(tmp_path):
    first = json.loads(run("datasets", "generate", "--n", "5", "--seed", "1").stdout)
    again = json.loads(run("datasets", "generate", "--n", "5", "--seed", "1").stdout)
    other = json.loads(run("datasets", "generate", "--n", "5", "--seed", "2").stdout)
    assert first == again and first != other and len(first) == 5
    assert all(set(q) == {"query", "expected_outcome"} for q in first)
    out, held = tmp_path / "train.json", tmp_path / "eval.json"
    assert (
        run(
            "datasets", "generate", "--n", "10", "--seed", "3", "--out", str(out), "--held-out", str(held)
        ).returncode
        == 0
    )
    train, evaluation = json.loads(out.read_text()), json.loads(held.read_text())
    assert len(train) == 10 and len(evaluation) == 2  # train keeps N; held-out is N x 0.2 more
    assert not {q["query"] for q in train} & {q["query"] for q in evaluation}
    held_out = json.loads(
        run("datasets", "generate", "--n", "2", "--seed", "3", "--split", "held-out").stdout
    )
    assert held_out == evaluation


def test_trainer_rejects_a_bad_config_naming_the_field(tmp_path):
    data, config = tmp_path / "d.json", tmp_path / "c.json"
    data.write_text(json.dumps([{"query": "q", "expected_outcome": {}}]))
    config.write_text(json.dumps({"n_iterations": 0}))
    proc = run("trainer", "--dataset", str(data), "--config", str(config), "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 2 and "n_iterations" in proc.stderr


def test_token_is_verified_by_the_api_verifier(tmp_path):
    from agentcore.auth.tokens import TokenVerifier

    secret = tmp_path / "secret"
    secret.write_text("s" * 48)
    proc = run(
        "token",
        "--secret-file",
        str(secret),
        "--sub",
        "bob",
        "--namespace",
        "team-a",
        "--permission",
        "training:view",
    )
    assert proc.returncode == 0, proc.stderr
    principal = TokenVerifier.from_files(hs256_secret="s" * 48).verify(proc.stdout.strip())
    assert principal.sub == "bob" and "team-a" in principal.namespaces


def test_operator_refuses_bad_election_timings_naming_them():
    flags = run("operator", "--lease-duration", "3", "--renew-deadline", "5")
    assert flags.returncode == 2
    assert "lease duration (3s) must be greater than the renew deadline (5.0s)" in flags.stderr
    assert "Traceback" not in flags.stderr
    assert "--retry-period" in run("operator", "--help").stdout
