"""The operator on the real control plane, with the node agent running trainer pods that use real
PostgreSQL and S3: the TrainingJob lifecycle end to end."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import threading
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from agentcore.api.labels import USABLE_BY_TRAININGJOBS
from agentcore.devenv.procs import free_port
from agentcore_trainer.datasets import generate
from tests.conftest import REPO, get_json, trajectory_counts, wait_for
from tests.operator_support import OperatorProcess
from tests.operator_support import migrate as _migrate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def operator(control_plane, node_agent, crds_installed, postgres, s3, tmp_path_factory):
    op = OperatorProcess(control_plane, postgres, s3, tmp_path_factory.mktemp("operator"))
    asyncio.run(_migrate(postgres.dsn))  # what the chart's pre-install hook Job does
    op.start()
    yield op
    op.stop()


class Receiver:
    """A webhook endpoint on loopback that records every delivery."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.deliveries: list[tuple[dict, bytes]] = []
        self.fail_first = 0
        self._ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        self._ready.wait(10)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        self.deliveries.append(({k.lower(): v for k, v in request.headers.items()}, body))
        return web.Response(status=204)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        loop.run_forever()

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.deliveries]


def training_job(
    name: str,
    iterations: int,
    budget: str = "10.00",
    webhook: dict | None = None,
    batch: int = 8,
    group: int = 4,
    checkpoint_interval: int = 10,
    backoff: int = 3,
) -> str:
    spec = {
        "agentId": "agent-under-test",
        "config": {
            "nIterations": iterations,
            "batchSize": batch,
            "nTrajectoriesPerQuery": group,
            "maxBudgetUsd": budget,
            "checkpointInterval": checkpoint_interval,
            "maxStepsPerTrajectory": 6,
            "seed": 5,
        },
        "trainingData": {"configMapKeyRef": {"name": "queries", "key": "queries.json"}},
        "backoffLimit": backoff,
    }
    if webhook:
        spec["webhooks"] = [webhook]
    return yaml.safe_dump(
        {
            "apiVersion": "training.agentcore.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def add_queries(cp, ns: str) -> None:
    data = json.dumps(generate(120, seed=21))
    cp.kubectl("-n", ns, "create", "configmap", "queries", f"--from-literal=queries.json={data}")


def tj(cp, ns: str, name: str) -> dict:
    return get_json(cp, "-n", ns, "get", "trainingjob", name)


def phase_is(cp, ns: str, name: str, *phases: str):
    obj = tj(cp, ns, name)
    return obj if (obj.get("status") or {}).get("phase") in phases else None


def condition(obj: dict, kind: str) -> dict | None:
    return next((c for c in obj["status"].get("conditions", []) if c["type"] == kind), None)


def trainer_pids(name: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                environ = (proc / "environ").read_bytes()
            except OSError:
                continue
            if f"AGENTCORE_JOB_NAME={name}\0".encode() in environ:
                pids.append(int(proc.name))
    return pids


def test_example_runs_to_completed(control_plane, operator, namespace):
    control_plane.kubectl("-n", namespace, "apply", "-f", str(REPO / "examples" / "trainingjob.yaml"))
    done = wait_for(
        lambda: phase_is(control_plane, namespace, "tool-agent-example", "Completed", "Failed"),
        180,
        interval=1,
        what="example TrainingJob to finish",
    )
    status = done["status"]
    assert status["phase"] == "Completed", status
    assert status["currentIteration"] == status["totalIterations"] == 40
    assert status["progressPercent"] == 100
    assert {"trainLoss", "avgReward", "trajectoriesGenerated"} <= set(status["metrics"])
    assert status["checkpoints"] and status["bestCheckpointId"]
    assert float(status["costUsd"]) > 0
    evaluation = status["evaluation"]
    assert evaluation["queriesEvaluated"] == 30
    assert evaluation["baselineComparison"]["successRateImprovement"] > 0
    assert condition(done, "Complete")["status"] == "True"
    events = control_plane.kubectl("-n", namespace, "get", "events", "-o", "json").stdout
    assert "TrainerJobCreated" in events and "PhaseCompleted" in events


def test_cancel_mid_run_then_cancel_again_refused(control_plane, operator, namespace, postgres):
    add_queries(control_plane, namespace)
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=training_job("cancel-me", 2000))
    wait_for(
        lambda: (
            (tj(control_plane, namespace, "cancel-me").get("status") or {}).get("currentIteration", 0) >= 12
        ),
        120,
        interval=0.5,
        what="training progress",
    )
    patch = json.dumps({"spec": {"cancel": {"requested": True, "reason": "enough"}}})
    control_plane.kubectl("-n", namespace, "patch", "tj", "cancel-me", "--type=merge", "-p", patch)
    done = wait_for(
        lambda: phase_is(control_plane, namespace, "cancel-me", "Cancelled"), 90, what="Cancelled"
    )
    cancellation = done["status"]["cancellation"]
    assert cancellation["reason"] == "enough"
    assert cancellation["checkpointSaved"] is True
    assert cancellation["iterationsCompleted"] >= 12
    last = max(done["status"]["checkpoints"], key=lambda c: c["iteration"])
    assert cancellation["checkpointId"] == last["id"]
    assert last["iteration"] == cancellation["iterationsCompleted"]
    assert done["status"]["trainer"]["state"] == "Stopped"
    again = control_plane.kubectl(
        "-n",
        namespace,
        "patch",
        "tj",
        "cancel-me",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"cancel": {"requested": True, "reason": "again"}}}),
        check=False,
    )
    assert again.returncode != 0 and "already finished" in again.stderr


def test_suspend_then_resume_continues_from_checkpoint(control_plane, operator, namespace, postgres):
    add_queries(control_plane, namespace)
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=training_job("pausable", 150))
    wait_for(
        lambda: (
            (tj(control_plane, namespace, "pausable").get("status") or {}).get("currentIteration", 0) >= 10
        ),
        120,
        interval=0.5,
        what="training progress",
    )
    control_plane.kubectl(
        "-n", namespace, "patch", "tj", "pausable", "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )

    def suspended():
        obj = tj(control_plane, namespace, "pausable")
        cond = condition(obj, "Suspended")
        return obj if cond and cond["status"] == "True" else None

    paused = wait_for(suspended, 90, what="Suspended condition")
    pods = get_json(
        control_plane, "-n", namespace, "get", "pods", "-l", "training.agentcore.io/trainingjob=pausable"
    )["items"]
    assert (
        all(
            p["status"]["phase"] in ("Succeeded", "Failed") or p["metadata"].get("deletionTimestamp")
            for p in pods
        )
        or not pods
    )
    assert trainer_pids("pausable") == []
    stopped_at = paused["status"]["currentIteration"]
    assert max(c["iteration"] for c in paused["status"]["checkpoints"]) == stopped_at
    assert paused["status"]["phase"] not in ("Completed", "Failed", "Cancelled")

    control_plane.kubectl(
        "-n", namespace, "patch", "tj", "pausable", "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )
    done = wait_for(
        lambda: phase_is(control_plane, namespace, "pausable", "Completed", "Failed"),
        180,
        interval=1,
        what="Completed after resume",
    )
    assert done["status"]["phase"] == "Completed"
    assert condition(done, "Suspended")["status"] == "False"
    total, distinct = trajectory_counts(postgres.dsn, done["metadata"]["uid"])
    assert total == distinct == 150 * 8 * 4


def test_tiny_budget_stops_with_budget_exceeded_and_warnings(control_plane, operator, namespace):
    add_queries(control_plane, namespace)
    receiver = Receiver()
    control_plane.kubectl(
        "-n", namespace, "create", "secret", "generic", "hook-key", "--from-literal=key=s3cr3t"
    )
    control_plane.kubectl("-n", namespace, "label", "secret", "hook-key", f"{USABLE_BY_TRAININGJOBS}=true")
    hook = {
        "url": receiver.url,
        "events": ["training.budget.warning", "training.job.failed"],
        "secretRef": {"name": "hook-key", "key": "key"},
    }
    control_plane.kubectl(
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=training_job("frugal", 1000, budget="0.10", webhook=hook, batch=4, group=4),
    )
    done = wait_for(
        lambda: phase_is(control_plane, namespace, "frugal", "Failed", "Completed"),
        180,
        interval=1,
        what="budget stop",
    )
    assert done["status"]["reason"] == "BudgetExceeded"
    assert condition(done, "BudgetExceeded")["status"] == "True"
    assert float(done["status"]["costUsd"]) <= 0.10
    wait_for(lambda: len(receiver.deliveries) >= 3, 30, what="webhook deliveries")
    assert receiver.events() == ["training.budget.warning", "training.budget.warning", "training.job.failed"]
    thresholds = [json.loads(body)["data"]["threshold_percent"] for _, body in receiver.deliveries[:2]]
    assert thresholds == [75, 90]


def test_trainer_killed_job_retries_and_resumes(control_plane, operator, namespace, postgres):
    add_queries(control_plane, namespace)
    control_plane.kubectl(
        "-n", namespace, "apply", "-f", "-", input=training_job("crashy", 120, checkpoint_interval=5)
    )
    wait_for(
        lambda: (tj(control_plane, namespace, "crashy").get("status") or {}).get("currentIteration", 0) >= 12,
        120,
        interval=0.3,
        what="training progress",
    )
    pids = trainer_pids("crashy")
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    done = wait_for(
        lambda: phase_is(control_plane, namespace, "crashy", "Completed", "Failed"),
        180,
        interval=1,
        what="Completed after a retry",
    )
    assert done["status"]["phase"] == "Completed", done["status"]
    job = get_json(control_plane, "-n", namespace, "get", "job", "crashy-trainer")
    assert job["status"].get("failed", 0) == 1
    total, distinct = trajectory_counts(postgres.dsn, done["metadata"]["uid"])
    assert total == distinct == 120 * 8 * 4


def test_operator_restart_mid_run_keeps_one_job_and_webhooks_once(control_plane, operator, namespace):
    add_queries(control_plane, namespace)
    receiver = Receiver()
    control_plane.kubectl(
        "-n", namespace, "create", "secret", "generic", "hook-key", "--from-literal=key=k3y"
    )
    control_plane.kubectl("-n", namespace, "label", "secret", "hook-key", f"{USABLE_BY_TRAININGJOBS}=true")
    events = ["training.job.started", "training.job.progress", "training.job.completed"]
    hook = {"url": receiver.url, "events": events, "secretRef": {"name": "hook-key", "key": "key"}}
    receiver.fail_first = 2  # deliveries are retried with backoff
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=training_job("steady", 60, webhook=hook))
    wait_for(
        lambda: (tj(control_plane, namespace, "steady").get("status") or {}).get("currentIteration", 0) >= 15,
        120,
        interval=0.3,
        what="training progress",
    )
    operator.kill()
    operator.start()
    done = wait_for(
        lambda: phase_is(control_plane, namespace, "steady", "Completed", "Failed"),
        180,
        interval=1,
        what="Completed after operator restart",
    )
    assert done["status"]["phase"] == "Completed"
    jobs = get_json(control_plane, "-n", namespace, "get", "jobs")["items"]
    assert [j["metadata"]["name"] for j in jobs] == ["steady-trainer"]
    wait_for(lambda: "training.job.completed" in receiver.events(), 30, what="completed webhook")
    expected = ["training.job.started", *["training.job.progress"] * 6, "training.job.completed"]
    keys = [h["x-agentcore-delivery"] for h, _ in receiver.deliveries]
    # At-least-once across a restart: duplicates carry the same idempotency key; unique ones are in order.
    unique = list(dict.fromkeys(keys))
    first_of = {h["x-agentcore-delivery"]: json.loads(b)["event"] for h, b in reversed(receiver.deliveries)}
    assert [first_of[k] for k in unique] == expected
    iterations = [
        json.loads(b)["data"]["current_iteration"]
        for h, b in receiver.deliveries
        if json.loads(b)["event"] == "training.job.progress"
    ]
    assert sorted(set(iterations)) == [10, 20, 30, 40, 50, 60]
    for headers, body in receiver.deliveries:
        expected_sig = (
            "sha256="
            + hmac.new(
                b"k3y", headers["x-agentcore-timestamp"].encode() + b"." + body, hashlib.sha256
            ).hexdigest()
        )
        assert hmac.compare_digest(headers["x-agentcore-signature"], expected_sig)


def test_deleting_trainingjob_removes_children(control_plane, operator, namespace):
    add_queries(control_plane, namespace)
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=training_job("short-lived", 2000))
    wait_for(lambda: phase_is(control_plane, namespace, "short-lived", "Running"), 120, what="Running")
    control_plane.kubectl("-n", namespace, "delete", "tj", "short-lived", "--wait=true", "--timeout=60s")

    def children_gone():
        out = get_json(
            control_plane,
            "-n",
            namespace,
            "get",
            "jobs,pods,roles,rolebindings,serviceaccounts,secrets",
            "-l",
            "training.agentcore.io/trainingjob=short-lived",
        )
        return not out["items"]

    wait_for(children_gone, 90, interval=1, what="garbage collection of the trainer Job and its pods")
    wait_for(lambda: trainer_pids("short-lived") == [], 30, what="trainer process gone")


def test_invalid_training_data_fails_with_reason_and_event(control_plane, operator, namespace):
    data = json.dumps(generate(50, seed=3))
    control_plane.kubectl(
        "-n", namespace, "create", "configmap", "queries", f"--from-literal=queries.json={data}"
    )
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=training_job("too-few", 10))
    done = wait_for(
        lambda: phase_is(control_plane, namespace, "too-few", "Failed"), 60, what="validation failure"
    )
    assert done["status"]["reason"] == "ValidationFailed"
    assert "50 queries; at least 100" in done["status"]["message"]
    assert get_json(control_plane, "-n", namespace, "get", "jobs")["items"] == []
    wait_for(
        lambda: "PhaseFailed" in control_plane.kubectl("-n", namespace, "get", "events").stdout,
        30,
        what="Warning event",
    )

    control_plane.kubectl(
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=training_job("no-data", 10).replace("name: queries", "name: missing"),
    )
    missing = wait_for(
        lambda: phase_is(control_plane, namespace, "no-data", "Failed"), 60, what="missing data"
    )
    assert "ConfigMap 'missing' not found" in missing["status"]["message"]


def test_operator_liveness_metrics_and_json_logs(operator):
    import urllib.request

    def get(port: int, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.read().decode()

    wait_for(lambda: get(operator.liveness_port, "/healthz") is not None, 30, what="liveness endpoint")
    metrics = wait_for(lambda: get(operator.metrics_port, "/metrics"), 30, what="metrics endpoint")
    assert "agentcore_reconcile_seconds" in metrics and "agentcore_trainingjobs" in metrics
    log_line = next(line for line in operator.proc.log_path.read_text().splitlines() if line.startswith("{"))
    assert {"message", "timestamp"} <= set(json.loads(log_line))
