"""The TrainingJob state machine, as a pure function of what is observed.

Given the TrainingJob (spec and status) and its child Job, `decide` returns the operator's part of
the status, whether the Job must exist and be suspended, and the notifications due. Calling it
again with the same observations gives the same answer, which is what makes the controller
level-triggered and safe to restart at any point.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from agentcore.api.common import Condition, ConditionStatus, format_money, parse_money, set_condition
from agentcore.api.training import TrainerState, TrainingPhase, WebhookEvent
from agentcore.controllers.common import batchjob as st

Obj = dict[str, Any]
WARN_THRESHOLDS = (75, 90)
PROGRESS_EVERY = 10


@dataclass(frozen=True)
class Notification:
    key: str  # once-only identity, recorded in status.notifiedEvents after delivery
    event: WebhookEvent
    data: Obj
    event_type: str = "Normal"  # of the Kubernetes Event
    reason: str = ""
    message: str = ""


@dataclass
class Decision:
    status: Obj  # desired operator-owned status (camelCase)
    want_job: bool = False  # create the Job (and its RBAC/Secret) if missing
    suspend_job: bool | None = None  # desired Job.spec.suspend; None leaves it alone
    notifications: list[Notification] = field(default_factory=list)


def _stamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Conditions:
    def __init__(self, raw: list[Obj], generation: int | None, now: dt.datetime) -> None:
        self.items = [Condition.model_validate(c) for c in raw]
        self.generation = generation
        self.now = now

    def set(self, kind: str, value: bool | None, reason: str, message: str = "") -> None:
        status = ConditionStatus.UNKNOWN if value is None else ConditionStatus(str(value))
        self.items = set_condition(self.items, kind, status, reason, message, self.generation, self.now)

    def dump(self) -> list[Obj]:
        return [c.to_resource() for c in self.items]


def decide(tj: Obj, job: Obj | None, data_error: str | None, now: dt.datetime) -> Decision:
    spec, status, meta = tj["spec"], dict(tj.get("status") or {}), tj["metadata"]
    desired = st.operator_view(status)
    desired.setdefault("jobId", meta["uid"])
    desired["totalIterations"] = spec["config"].get("nIterations", 1000)
    desired["budgetUsd"] = format_money(parse_money(spec["config"].get("maxBudgetUsd", "100.00")))
    desired["observedGeneration"] = meta.get("generation", 1)
    conds = _Conditions(status.get("conditions", []), meta.get("generation"), now)
    decision = Decision(desired)
    phase = TrainingPhase(desired["phase"]) if desired.get("phase") else None

    if phase is None or not phase.is_terminal:
        if data_error is not None:
            _finish(desired, conds, now, TrainingPhase.FAILED, "ValidationFailed", data_error)
        else:
            desired.setdefault("phase", TrainingPhase.QUEUED.value)
            conds.set(
                "Created",
                True,
                "TrainerJobCreated" if job else "Validated",
                "trainer Job created" if job else "training data validated",
            )
            decision.want_job = True
            _progress(tj, job, desired, conds, decision, now)
    desired["conditions"] = conds.dump()
    decision.notifications = notifications(tj, desired)
    return decision


def notifications(tj: Obj, desired: Obj) -> list[Notification]:
    """Every notification due so far, in the order events happened; delivery skips those done."""
    status = tj.get("status") or {}
    phase = TrainingPhase(desired.get("phase") or TrainingPhase.QUEUED.value)
    due: list[Notification] = []
    if desired.get("startedAt") or status.get("trainer"):
        due.append(
            Notification(
                "training.job.started",
                WebhookEvent.JOB_STARTED,
                _base_data(tj, "running"),
                reason="Started",
                message="trainer started",
            )
        )
    current = int(status.get("currentIteration") or 0)
    done = int(status.get("notifiedProgressIteration") or 0)
    due += [progress_notification(tj, it) for it in range(done + PROGRESS_EVERY, current + 1, PROGRESS_EVERY)]
    due += _budget_warnings(tj)
    if phase.is_terminal:
        due += _terminal_notifications(tj, desired)
    return due


def _progress(
    tj: Obj, job: Obj | None, desired: Obj, conds: _Conditions, decision: Decision, now: dt.datetime
) -> None:
    spec, status = tj["spec"], tj.get("status") or {}
    trainer = (status.get("trainer") or {}).get("state")
    finished = st.job_finished(job)
    cost = parse_money(status.get("costUsd", "0"))
    budget = parse_money(spec["config"].get("maxBudgetUsd", "100.00"))
    over_budget = cost >= budget and (trainer != TrainerState.COMPLETED.value)
    cancel = (spec.get("cancel") or {}).get("requested", False)

    if finished == "Complete":
        _on_job_complete(trainer, desired, conds, now)
        return
    if finished == "Failed":
        failed = st.job_condition(job, "Failed") or {}
        message = (status.get("trainer") or {}).get("message") or failed.get("message", "trainer Job failed")
        _finish(desired, conds, now, TrainingPhase.FAILED, failed.get("reason") or "JobFailed", message)
        return
    if cancel or over_budget:
        decision.suspend_job = True if job else None
        if job is None or st.job_pods_gone(job):
            if cancel:
                _cancelled(tj, desired, conds, now)
            else:
                conds.set("BudgetExceeded", True, "BudgetExceeded", _budget_message(cost, budget))
                _finish(
                    desired, conds, now, TrainingPhase.FAILED, "BudgetExceeded", _budget_message(cost, budget)
                )
        return
    _suspend_or_run(tj, job, desired, conds, decision, now)


def _suspend_or_run(
    tj: Obj, job: Obj | None, desired: Obj, conds: _Conditions, decision: Decision, now: dt.datetime
) -> None:
    from agentcore.controllers.trainingjob.children import kueue_managed

    if tj["spec"].get("suspend"):
        decision.suspend_job = True if job else None
        gone = job is None or st.job_pods_gone(job)
        conds.set(
            "Suspended",
            True if gone else None,
            "Suspended" if gone else "Suspending",
            "trainer stopped after a checkpoint"
            if gone
            else "waiting for the trainer to checkpoint and stop",
        )
        if gone:
            conds.set("Running", False, "Suspended", "job is suspended")
        return
    if st.job_suspended(job) and not kueue_managed(tj):
        decision.suspend_job = False
    if any(c.type == "Suspended" and c.status == ConditionStatus.TRUE for c in conds.items):
        conds.set("Suspended", False, "Resumed", "job resumed from its latest checkpoint")
    # A pending pod counts as active but trains nothing: Running means a ready pod or a live trainer.
    trainer_running = ((tj.get("status") or {}).get("trainer") or {}).get(
        "state"
    ) == TrainerState.RUNNING.value
    if st.job_active(job) > 0 and (st.job_ready(job) > 0 or trainer_running):
        if desired.get("phase") != TrainingPhase.RUNNING.value:
            desired["phase"] = TrainingPhase.RUNNING.value
        desired.setdefault("startedAt", _stamp(now))
        conds.set("Running", True, "TrainerRunning", "trainer pod is running")


def _on_job_complete(trainer: str | None, desired: Obj, conds: _Conditions, now: dt.datetime) -> None:
    if trainer == TrainerState.COMPLETED.value:
        conds.set("Complete", True, "TrainingComplete", "all iterations completed")
        _finish(desired, conds, now, TrainingPhase.COMPLETED, "TrainingComplete", "all iterations completed")
    elif trainer == TrainerState.BUDGET_EXCEEDED.value:
        message = "stopped before an iteration whose projected cost would pass the budget"
        conds.set("BudgetExceeded", True, "BudgetExceeded", message)
        _finish(desired, conds, now, TrainingPhase.FAILED, "BudgetExceeded", message)
    else:
        _finish(
            desired,
            conds,
            now,
            TrainingPhase.FAILED,
            "TrainerExitedEarly",
            f"trainer Job completed but the trainer reported {trainer or 'nothing'}",
        )


def _finish(
    desired: Obj, conds: _Conditions, now: dt.datetime, phase: TrainingPhase, reason: str, message: str
) -> None:
    desired["phase"] = phase.value
    desired["reason"] = reason
    desired["message"] = message[:4000]
    desired.setdefault("completedAt", _stamp(now))
    conds.set("Running", False, reason, message[:4000])
    if phase == TrainingPhase.FAILED:
        conds.set("Failed", True, reason, message[:4000])


def _cancelled(tj: Obj, desired: Obj, conds: _Conditions, now: dt.datetime) -> None:
    status = tj.get("status") or {}
    checkpoints = sorted(status.get("checkpoints") or [], key=lambda c: c.get("iteration", 0))
    reason = (tj["spec"].get("cancel") or {}).get("reason") or "cancelled by user"
    cancellation: Obj = {
        "cancelledAt": _stamp(now),
        "reason": reason,
        "iterationsCompleted": int(status.get("currentIteration") or 0),
        "checkpointSaved": bool(checkpoints),
    }
    if checkpoints:
        cancellation["checkpointId"] = checkpoints[-1]["id"]
    desired["cancellation"] = desired.get("cancellation") or cancellation
    conds.set("Cancelled", True, "Cancelled", reason)
    _finish(desired, conds, now, TrainingPhase.CANCELLED, "Cancelled", reason)


def _budget_message(cost: Decimal, budget: Decimal) -> str:
    return f"cost ${format_money(cost)} reached the budget ${format_money(budget)}"


def _budget_warnings(tj: Obj) -> list[Notification]:
    status = tj.get("status") or {}
    cost = parse_money(status.get("costUsd", "0"))
    budget = parse_money(tj["spec"]["config"].get("maxBudgetUsd", "100.00"))
    if budget <= 0:
        return []
    used = cost / budget * 100
    due = []
    for threshold in WARN_THRESHOLDS:
        if used >= threshold:
            data = {
                **_base_data(tj, "running"),
                "threshold_percent": threshold,
                "cost_usd": format_money(cost),
                "budget_usd": format_money(budget),
            }
            message = f"{threshold}% of the budget used (${format_money(cost)} of ${format_money(budget)})"
            due.append(
                Notification(
                    f"training.budget.warning:{threshold}",
                    WebhookEvent.BUDGET_WARNING,
                    data,
                    "Warning",
                    "BudgetWarning",
                    message,
                )
            )
    return due


def progress_notification(tj: Obj, iteration: int) -> Notification:
    status = tj.get("status") or {}
    data = {
        **_base_data(tj, "running"),
        "current_iteration": iteration,
        "total_iterations": tj["spec"]["config"].get("nIterations", 1000),
        "progress_percent": status.get("progressPercent"),
        "cost_usd": status.get("costUsd", "0.00"),
        "metrics": _snake(status.get("metrics") or {}),
    }
    return Notification(
        f"training.job.progress:{iteration}",
        WebhookEvent.JOB_PROGRESS,
        data,
        reason="Progress",
        message=f"iteration {iteration} reached",
    )


def _terminal_notifications(tj: Obj, desired: Obj) -> list[Notification]:
    phase = TrainingPhase(desired["phase"])
    status = tj.get("status") or {}
    data = _base_data(tj, phase.api_value)
    if phase == TrainingPhase.COMPLETED:
        evaluation = status.get("evaluation") or {}
        data["final_metrics"] = {
            "success_rate": evaluation.get("successRate", (status.get("metrics") or {}).get("successRate")),
            "cost_usd": status.get("costUsd", "0.00"),
        }
        return [
            Notification(
                "training.job.completed",
                WebhookEvent.JOB_COMPLETED,
                data,
                reason="Completed",
                message="training completed",
            )
        ]
    if phase == TrainingPhase.CANCELLED:
        cancellation = desired.get("cancellation") or {}
        data.update(
            {
                "reason": cancellation.get("reason"),
                "checkpoint_id": cancellation.get("checkpointId"),
                "iterations_completed": cancellation.get("iterationsCompleted"),
            }
        )
        return [
            Notification(
                "training.job.cancelled",
                WebhookEvent.JOB_CANCELLED,
                data,
                reason="Cancelled",
                message=str(cancellation.get("reason")),
            )
        ]
    data.update(
        {
            "reason": desired.get("reason"),
            "error": desired.get("message"),
            "cost_usd": status.get("costUsd", "0.00"),
        }
    )
    return [
        Notification(
            "training.job.failed",
            WebhookEvent.JOB_FAILED,
            data,
            "Warning",
            str(desired.get("reason") or "Failed"),
            str(desired.get("message")),
        )
    ]


def _base_data(tj: Obj, api_status: str) -> Obj:
    return {
        "job_id": tj["metadata"]["uid"],
        "agent_id": tj["spec"]["agentId"],
        "status": api_status,
        "name": tj["metadata"]["name"],
        "namespace": tj["metadata"]["namespace"],
    }


def _snake(metrics: Obj) -> Obj:
    import re

    return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in metrics.items()}
