"""The TrainingJob state machine as a pure function."""

from __future__ import annotations

import datetime as dt
from typing import Any

from agentcore.api.batchjob import BatchJob
from agentcore.api.training import TrainingJob
from agentcore.controllers.trainingjob.decide import Decision, decide

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
UID = "0b6f6c1e-8a3e-4a59-9d0f-3f0f5b7a1c01"
DATA = {"configMapKeyRef": {"name": "data", "key": "q.json"}}


def trainingjob(status: dict | None = None, **spec) -> TrainingJob:
    return TrainingJob.model_validate(
        {
            "apiVersion": "training.agentcore.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "j", "namespace": "ns", "uid": UID, "generation": 1},
            "spec": {
                "agentId": "a",
                "config": {"nIterations": 50, "maxBudgetUsd": "10.00"},
                "trainingData": DATA,
                **spec,
            },
            "status": status or {},
        }
    )


def job(active: int = 0, suspend: bool = False, conditions: list | None = None, **status) -> BatchJob:
    return BatchJob.model_validate(
        {
            "metadata": {"name": "j-trainer"},
            "spec": {"suspend": suspend},
            "status": {"active": active, "conditions": conditions or [], **status},
        }
    )


def out(decision: Decision) -> dict[str, Any]:
    """The desired status as the resource carries it."""
    return decision.status.to_resource()


def checkpoint(ident: str, iteration: int) -> dict:
    return {"id": ident, "iteration": iteration, "uri": f"s3://b/{ident}", "createdAt": NOW.isoformat()}


def test_new_job_is_queued_and_wants_its_job():
    decision = decide(trainingjob(), None, None, NOW)
    assert out(decision)["phase"] == "Queued" and decision.want_job
    assert out(decision)["budgetUsd"] == "10.00" and out(decision)["totalIterations"] == 50


def test_validation_error_fails_without_a_job():
    decision = decide(trainingjob(), None, "trainingData holds 3 queries", NOW)
    assert out(decision)["phase"] == "Failed" and out(decision)["reason"] == "ValidationFailed"
    assert not decision.want_job
    assert [n.key for n in decision.notifications] == ["training.job.failed"]


def test_running_then_complete():
    pending = decide(trainingjob({"phase": "Queued"}), job(active=1), None, NOW)
    assert out(pending)["phase"] == "Queued"  # a pending pod is not training yet
    ready = job(active=1, ready=1)
    running = decide(trainingjob({"phase": "Queued"}), ready, None, NOW)
    assert out(running)["phase"] == "Running" and out(running)["startedAt"]
    done = decide(
        trainingjob({"phase": "Running", "trainer": {"state": "Completed"}}),
        job(conditions=[{"type": "Complete", "status": "True"}]),
        None,
        NOW,
    )
    assert out(done)["phase"] == "Completed"
    assert [n.key for n in done.notifications] == ["training.job.started", "training.job.completed"]


def test_cancel_suspends_job_then_records_checkpoint():
    status = {
        "phase": "Running",
        "currentIteration": 12,
        "checkpoints": [checkpoint("c10", 10), checkpoint("c12", 12)],
    }
    tj = trainingjob(status, cancel={"requested": True, "reason": "stop"})
    pending = decide(tj, job(active=1), None, NOW)
    assert pending.suspend_job is True and out(pending)["phase"] == "Running"
    done = decide(tj, job(active=0, suspend=True), None, NOW)
    assert out(done)["phase"] == "Cancelled"
    assert out(done)["cancellation"] == {
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
    assert out(stopped)["phase"] == "Failed" and out(stopped)["reason"] == "BudgetExceeded"


def test_progress_notifications_for_every_ten_iterations_not_yet_sent():
    tj = trainingjob({"phase": "Running", "currentIteration": 34, "notifiedProgressIteration": 10})
    keys = [n.key for n in decide(tj, job(active=1), None, NOW).notifications]
    assert [k for k in keys if "progress" in k] == ["training.job.progress:20", "training.job.progress:30"]


def test_suspend_and_resume():
    suspended = decide(
        trainingjob({"phase": "Running"}, suspend=True), job(active=0, suspend=True), None, NOW
    )
    cond = {c["type"]: c for c in out(suspended)["conditions"]}
    assert cond["Suspended"]["status"] == "True" and out(suspended)["phase"] == "Running"
    resumed = decide(trainingjob(out(suspended)), job(active=0, suspend=True), None, NOW)
    assert resumed.suspend_job is False
    assert {c["type"]: c for c in out(resumed)["conditions"]}["Suspended"]["status"] == "False"


def test_terminal_job_is_left_alone():
    decision = decide(trainingjob({"phase": "Completed"}), None, None, NOW)
    assert not decision.want_job and decision.suspend_job is None


# --- chaos probe: budget -------------------------------------------------------------------------


def test_exact_cost_just_under_the_budget_does_not_stop_the_trainer():
    # The trainer used to report costUsd rounded to cents: 0.0954732 became "0.10" and read as
    # "reached" a $0.10 budget.
    tj = trainingjob({"phase": "Running", "costUsd": "0.0954732"}, config={"maxBudgetUsd": "0.10"})
    decision = decide(tj, job(active=1, ready=1), None, NOW)
    assert decision.suspend_job is None and out(decision)["phase"] == "Running"


def test_trainer_that_stopped_itself_on_budget_is_not_suspended():
    status = {"phase": "Running", "costUsd": "0.1012", "trainer": {"state": "BudgetExceeded"}}
    tj = trainingjob(status, config={"maxBudgetUsd": "0.10"})
    exiting = decide(tj, job(active=1, ready=1), None, NOW)
    assert exiting.suspend_job is None
    done = decide(tj, job(conditions=[{"type": "Complete", "status": "True"}]), None, NOW)
    assert done.suspend_job is None and out(done)["reason"] == "BudgetExceeded"
    assert out(done)["message"] == "stopped before an iteration whose projected cost would pass the budget"


def test_completed_trainer_over_budget_is_not_suspended():
    status = {"phase": "Running", "costUsd": "10.5", "trainer": {"state": "Completed"}}
    decision = decide(trainingjob(status), job(active=1, ready=1), None, NOW)
    assert decision.suspend_job is None


def test_finished_job_is_never_suspended():
    tj = trainingjob({"phase": "Running", "costUsd": "12.00"})
    failed = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    decision = decide(tj, job(conditions=failed), None, NOW)
    assert decision.suspend_job is None and out(decision)["reason"] == "BackoffLimitExceeded"


def test_operator_budget_stop_message_shows_exact_amounts():
    tj = trainingjob({"phase": "Running", "costUsd": "10.0000001"})
    stopped = decide(tj, job(active=0, suspend=True), None, NOW)
    assert out(stopped)["message"] == "cost $10.0000001 reached the budget $10.00"
    assert out(stopped)["costUsd"] == "10.0000001"  # the trainer's field, untouched


def test_status_patch_holds_only_changed_operator_fields():
    from agentcore.controllers.trainingjob.decide import status_patch

    tj = trainingjob({"phase": "Queued", "costUsd": "1.00", "currentIteration": 3})
    first = decide(tj, job(active=1, ready=1), None, NOW)
    patch = status_patch(tj.status, first.status)
    assert patch["phase"] == "Running" and not {"costUsd", "currentIteration"} & set(patch)
    again = decide(trainingjob(out(first)), job(active=1, ready=1), None, NOW)
    assert status_patch(trainingjob(out(first)).status, again.status) == {}


def test_indexed_job_with_one_rank_done_is_still_running():
    """Rank 1 exits 0 before rank 0 has evaluated: the Job (and the TrainingJob) is not done yet."""
    tj = trainingjob({"phase": "Running", "trainer": {"state": "Completed"}}, workers=2)
    decision = decide(tj, job(active=1, ready=1, succeeded=1), None, NOW)
    assert out(decision)["phase"] == "Running"


def test_indexed_job_out_of_retries_fails_with_the_jobs_reason():
    failed = [
        {"type": "Failed", "status": "True", "reason": "FailedIndexes", "message": "Job has failed indexes"}
    ]
    tj = trainingjob({"phase": "Running", "trainer": {"state": "Running"}}, workers=2)
    decision = decide(tj, job(conditions=failed, failed=4), None, NOW)
    status = out(decision)
    assert status["phase"] == "Failed" and status["reason"] == "FailedIndexes"
