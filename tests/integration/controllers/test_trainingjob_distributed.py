"""TrainingJobs with several workers on the real control plane: the operator's Indexed Job and
headless Service, kube-controller-manager's pods (one per rank), the node agent's per-pod
addresses and names, and torch.distributed (gloo) between the trainer processes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import yaml

from tests.conftest import get_json, trajectory_counts, wait_for
from tests.integration.controllers.test_trainingjob import (  # noqa: F401  (the operator fixture)
    add_queries,
    condition,
    operator,
    phase_is,
    tj,
    training_job,
)

pytestmark = pytest.mark.integration


def distributed_job(name: str, iterations: int, workers: int, **options) -> str:
    manifest = yaml.safe_load(training_job(name, iterations, **options))
    manifest["spec"]["workers"] = workers
    return yaml.safe_dump(manifest)


def rank_pids(name: str, rank: int | None = None) -> list[int]:
    """Trainer processes of the job (of one rank), found by the environment the pod gave them."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"AGENTCORE_JOB_NAME={name}".encode() in environ and (
            rank is None or f"RANK={rank}".encode() in environ
        ):
            pids.append(int(proc.name))
    return pids


def finished(cp, ns: str, name: str, agent, timeout: float, what: str) -> dict:
    """The finished TrainingJob; on a timeout, the pods and every rank's log, to see why."""
    try:
        return wait_for(lambda: phase_is(cp, ns, name, "Completed", "Failed"), timeout, interval=1, what=what)
    except AssertionError:
        print(cp.kubectl("-n", ns, "get", "pods,jobs", "-o", "wide", check=False).stdout)
        print(json.dumps((tj(cp, ns, name).get("status") or {}), indent=1)[:4000])
        for log in sorted((agent.state_dir / "pods" / ns).glob("*/trainer.log")):
            print(f"--- {log.parent.name}\n{log.read_text()[-3000:]}")
        raise


def iteration(cp, ns: str, name: str) -> int:
    return int((tj(cp, ns, name).get("status") or {}).get("currentIteration", 0))


def test_two_workers_survive_a_killed_rank_and_complete_exactly(
    control_plane,
    operator,  # noqa: F811  (the imported fixture)
    namespace,
    postgres,
    node_agent,
):
    add_queries(control_plane, namespace)
    manifest = distributed_job("pair", 120, workers=2, checkpoint_interval=5)
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=manifest)
    wait_for(lambda: iteration(control_plane, namespace, "pair") >= 12, 180, interval=0.3, what="progress")
    job = get_json(control_plane, "-n", namespace, "get", "job", "pair-trainer")
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["parallelism"] == 2
    service = get_json(control_plane, "-n", namespace, "get", "service", "pair-trainer")
    assert service["spec"]["clusterIP"] == "None"
    assert service["metadata"]["ownerReferences"][0]["kind"] == "TrainingJob"
    pods = get_json(
        control_plane, "-n", namespace, "get", "pods", "-l", "training.agentcore.io/trainingjob=pair"
    )
    running = [p for p in pods["items"] if p["status"].get("phase") == "Running"]
    indexes = sorted(
        p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in running
    )
    assert indexes == ["0", "1"]
    assert len({p["status"]["podIP"] for p in running}) == 2  # each rank its own address

    victims = rank_pids("pair", rank=1)
    assert victims
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    done = finished(control_plane, namespace, "pair", node_agent, 300, "Completed after rank 1 was killed")
    status = done["status"]
    assert status["phase"] == "Completed", status
    assert status["currentIteration"] == status["totalIterations"] == 120
    total, distinct = trajectory_counts(postgres.dsn, done["metadata"]["uid"])
    assert total == distinct == 120 * 8 * 4  # nothing lost, nothing written twice
    job = get_json(control_plane, "-n", namespace, "get", "job", "pair-trainer")
    # Rank 1's kill is the one counted failure; rank 0's exit on the lost peer is ignored.
    assert job["status"].get("failed", 0) == 1, job["status"]
    assert job["status"]["succeeded"] == 2


def test_four_workers_complete(control_plane, operator, namespace, postgres, node_agent):  # noqa: F811
    add_queries(control_plane, namespace)
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=distributed_job("quad", 20, workers=4))
    done = finished(control_plane, namespace, "quad", node_agent, 90, "four workers to finish")
    assert done["status"]["phase"] == "Completed", done["status"]
    assert done["status"]["currentIteration"] == 20
    total, distinct = trajectory_counts(postgres.dsn, done["metadata"]["uid"])
    assert total == distinct == 20 * 8 * 4
    job = get_json(control_plane, "-n", namespace, "get", "job", "quad-trainer")
    assert job["status"]["succeeded"] == 4


def test_two_workers_suspend_resume_then_cancel(control_plane, operator, namespace, postgres):  # noqa: F811
    add_queries(control_plane, namespace)
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=distributed_job("duo", 2000, workers=2))
    wait_for(lambda: iteration(control_plane, namespace, "duo") >= 10, 180, interval=0.5, what="progress")
    control_plane.kubectl(
        "-n", namespace, "patch", "tj", "duo", "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )

    def suspended():
        obj = tj(control_plane, namespace, "duo")
        cond = condition(obj, "Suspended")
        return obj if cond and cond["status"] == "True" else None

    paused = wait_for(suspended, 120, what="Suspended condition")
    wait_for(lambda: rank_pids("duo") == [], 30, what="every rank stopped")
    stopped_at = paused["status"]["currentIteration"]
    assert max(c["iteration"] for c in paused["status"]["checkpoints"]) == stopped_at
    assert paused["status"]["trainer"]["state"] == "Stopped"

    control_plane.kubectl(
        "-n", namespace, "patch", "tj", "duo", "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )
    wait_for(
        lambda: iteration(control_plane, namespace, "duo") >= stopped_at + 5,
        180,
        interval=0.5,
        what="resumed",
    )
    patch = json.dumps({"spec": {"cancel": {"requested": True, "reason": "enough"}}})
    control_plane.kubectl("-n", namespace, "patch", "tj", "duo", "--type=merge", "-p", patch)
    done = wait_for(lambda: phase_is(control_plane, namespace, "duo", "Cancelled"), 120, what="Cancelled")
    cancellation = done["status"]["cancellation"]
    assert cancellation["checkpointSaved"] is True and cancellation["reason"] == "enough"
    last = max(done["status"]["checkpoints"], key=lambda c: c["iteration"])
    assert last["iteration"] == cancellation["iterationsCompleted"] > stopped_at
    wait_for(lambda: rank_pids("duo") == [], 30, what="every rank stopped")
    total, distinct = trajectory_counts(postgres.dsn, done["metadata"]["uid"])
    assert total == distinct  # the resumed group rewrote no trajectory twice
    job = get_json(control_plane, "-n", namespace, "get", "job", "duo-trainer")
    assert job["status"].get("failed", 0) == 0, job["status"]  # stops are not failures
