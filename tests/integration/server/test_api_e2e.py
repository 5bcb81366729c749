"""End to end through the API: start_grpo with the SDK → the operator runs the job on the node agent
→ wait() follows it to Completed → export_trajectories pages through every trajectory once →
evaluate the best checkpoint. Real apiserver, PostgreSQL, MinIO; `agentcore api` as a process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agentcore.auth.tokens import ADMIN_ROLE, generate_secret, issue_token
from agentcore.devenv.procs import ManagedProcess, free_port, wait_until
from agentcore_sdk import TrainingClient
from agentcore_trainer.datasets import generate
from tests.integration.controllers.test_trainingjob import OperatorProcess, _migrate

pytestmark = pytest.mark.integration
AGENTCORE = str(Path(sys.executable).parent / "agentcore")


@pytest.fixture(scope="module")
def system(control_plane, node_agent, crds_installed, postgres, s3, tmp_path_factory):
    import asyncio
    import urllib.request

    state = tmp_path_factory.mktemp("e2e")
    asyncio.run(_migrate(postgres.dsn))
    operator = OperatorProcess(control_plane, postgres, s3, state)
    operator.start()
    secret = state / "jwt-secret"
    secret.write_text(generate_secret())
    port = free_port()
    api = ManagedProcess(
        "api",
        [AGENTCORE, "api", "--host", "127.0.0.1", "--port", str(port), "--jwt-secret-file", str(secret)],
        state / "api.log",
        env=operator.env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: urllib.request.urlopen(f"{url}/readyz", timeout=2).status == 200, 60, "API ready", api)
    yield url, secret.read_text().strip()
    api.stop()
    operator.stop()


def test_start_wait_export_evaluate(system, control_plane, namespace, capsys):
    url, secret = system
    token = issue_token(secret, "alice", namespaces=(namespace,), roles=(ADMIN_ROLE,))
    client = TrainingClient(base_url=url, api_key=token)
    training, held_out = generate(150, seed=31), generate(40, seed=32)
    config = {
        "n_iterations": 30,
        "batch_size": 8,
        "n_trajectories_per_query": 4,
        "checkpoint_interval": 10,
        "max_steps_per_trajectory": 6,
        "num_inner_iterations": 4,
        "max_budget_usd": 5,
    }
    job = client.start_training(
        agent_id="e2e-agent", config=config, training_data=training, evaluation_data=held_out
    )
    assert job.status == "queued" and job.total_iterations == 30

    final = client.wait(job.job_id, poll=0.5, timeout=180, progress=True)
    assert final.status == "completed", final
    assert final.current_iteration == 30 and final.progress_percent == 100
    assert "%" in capsys.readouterr().err  # the progress bar was drawn

    seen = [t.trajectory_id for t in client.iter_trajectories(job.job_id, page_size=97)]
    assert len(seen) == len(set(seen)) == 30 * 8 * 4
    first = client.export_trajectories(job.job_id, limit=10, offset=0)
    assert first.total_count == 960 and first.returned_count == 10 and first.has_more

    result = client.evaluate(job.job_id)
    assert result.queries_evaluated == 40
    assert result.checkpoint_id == final.best_checkpoint_id
    assert result.baseline_comparison is not None and result.baseline_comparison.p_value is not None
