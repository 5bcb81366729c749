"""The TrainingJob state machine as a pure function."""

from __future__ import annotations

import datetime as dt

from agentcore.controllers.trainingjob.decide import decide

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def trainingjob(status: dict | None = None, **spec) -> dict:
    return {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "j", "namespace": "ns", "uid": "u-1", "generation": 1},
        "spec": {"agentId": "a", "config": {"nIterations": 50, "maxBudgetUsd": "10.00"}, **spec},
        "status": status or {},
    }


def job(active: int = 0, suspend: bool = False, conditions: list | None = None) -> dict:
    return {
        "metadata": {"name": "j-trainer"},
        "spec": {"suspend": suspend},
        "status": {"active": active, "conditions": conditions or []},
    }


def test_new_job_is_queued_and_wants_its_job():
    decision = decide(trainingjob(), None, None, NOW)
    assert decision.status["phase"] == "Queued" and decision.want_job
    assert decision.status["budgetUsd"] == "10.00" and decision.status["totalIterations"] == 50


def test_validation_error_fails_without_a_job():
    decision = decide(trainingjob(), None, "trainingData holds 3 queries", NOW)
    assert decision.status["phase"] == "Failed" and decision.status["reason"] == "ValidationFailed"
    assert not decision.want_job
    assert [n.key for n in decision.notifications] == ["training.job.failed"]


def test_running_then_complete():
    pending = decide(trainingjob({"phase": "Queued"}), job(active=1), None, NOW)
    assert pending.status["phase"] == "Queued"  # a pending pod is not training yet
    ready = job(active=1)
    ready["status"]["ready"] = 1
    running = decide(trainingjob({"phase": "Queued"}), ready, None, NOW)
    assert running.status["phase"] == "Running" and running.status["startedAt"]
    done = decide(
        trainingjob({"phase": "Running", "trainer": {"state": "Completed"}}),
        job(conditions=[{"type": "Complete", "status": "True"}]),
        None,
        NOW,
    )
    assert done.status["phase"] == "Completed"
    assert [n.key for n in done.notifications] == ["training.job.started", "training.job.completed"]


def test_cancel_suspends_job_then_records_checkpoint():
    status = {
        "phase": "Running",
        "currentIteration": 12,
        "checkpoints": [{"id": "c10", "iteration": 10}, {"id": "c12", "iteration": 12}],
    }
    tj = trainingjob(status, cancel={"requested": True, "reason": "stop"})
    pending = decide(tj, job(active=1), None, NOW)
    assert pending.suspend_job is True and pending.status["phase"] == "Running"
    done = decide(tj, job(active=0, suspend=True), None, NOW)
    assert done.status["phase"] == "Cancelled"
    assert done.status["cancellation"] == {
        "cancelledAt": "2026-01-01T00:00:00Z",
        "reason": "stop",
        "iterationsCompleted": 12,
        "checkpointSaved": True,
        "checkpointId": "c12",
    }


def test_budget_reached_stops_and_warns_once_each():
    tj = trainingjob({"phase": "Running", "costUsd": "10.00"})
    stopping = decide(tj, job(active=1), None, NOW)
    assert stopping.suspend_job is True
    keys = [n.key for n in stopping.notifications]
    assert keys.count("training.budget.warning:75") == 1 and keys.count("training.budget.warning:90") == 1
    stopped = decide(tj, job(active=0, suspend=True), None, NOW)
    assert stopped.status["phase"] == "Failed" and stopped.status["reason"] == "BudgetExceeded"


def test_progress_notifications_for_every_ten_iterations_not_yet_sent():
    tj = trainingjob({"phase": "Running", "currentIteration": 34, "notifiedProgressIteration": 10})
    keys = [n.key for n in decide(tj, job(active=1), None, NOW).notifications]
    assert [k for k in keys if "progress" in k] == ["training.job.progress:20", "training.job.progress:30"]


def test_suspend_and_resume():
    suspended = decide(
        trainingjob({"phase": "Running"}, suspend=True), job(active=0, suspend=True), None, NOW
    )
    cond = {c["type"]: c for c in suspended.status["conditions"]}
    assert cond["Suspended"]["status"] == "True" and suspended.status["phase"] == "Running"
    resumed = decide(trainingjob(suspended.status), job(active=0, suspend=True), None, NOW)
    assert resumed.suspend_job is False
    assert {c["type"]: c for c in resumed.status["conditions"]}["Suspended"]["status"] == "False"


def test_terminal_job_is_left_alone():
    decision = decide(trainingjob({"phase": "Completed"}), None, None, NOW)
    assert not decision.want_job and decision.suspend_job is None
