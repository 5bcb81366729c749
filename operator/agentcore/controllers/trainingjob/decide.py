"""The TrainingJob state machine, as a pure function of what is observed.

Given the TrainingJob and a view of its child Job, `decide` returns the desired status (the
operator's fields updated, the trainer's left as observed), whether the Job must exist and be
suspended, and the notifications due. Calling it again with the same observations gives the same
answer, which is what makes the controller level-triggered and safe to restart at any point.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from agentcore.api.batchjob import BatchJob
from agentcore.api.common import Condition, ConditionStatus, find_condition, format_money, set_condition
from agentcore.api.training import (
    Cancellation,
    TrainerState,
    TrainingConditionType,
    TrainingJob,
    TrainingJobStatus,
    TrainingPhase,
    TrainingReason,
    WebhookEvent,
)
from agentcore.cost import money

Obj = dict[str, Any]
Cond = TrainingConditionType
Reason = TrainingReason
WARN_THRESHOLDS = (75, 90)
PROGRESS_EVERY = 10
MAX_MESSAGE = 4000

# Status fields the operator writes (snake_case names); the trainer owns every other one.
OPERATOR_STATUS_FIELDS = frozenset(
    {
        "phase",
        "conditions",
        "observed_generation",
        "job_id",
        "total_iterations",
        "budget_usd",
        "started_at",
        "completed_at",
        "cancellation",
        "reason",
        "message",
    }
)
# A trainer in these states is stopping (or stopped) by itself: suspending it changes nothing but
# the Job, and for BudgetExceeded it would race the trainer's own, more precise, account.
_SELF_STOPPED = frozenset({TrainerState.BUDGET_EXCEEDED, TrainerState.COMPLETED})


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
    status: TrainingJobStatus  # desired status: operator fields decided, trainer fields as observed
    want_job: bool = False  # create the Job (and its RBAC/Secret) if missing
    suspend_job: bool | None = None  # desired Job.spec.suspend; None leaves it alone
    notifications: list[Notification] = field(default_factory=list)


def operator_fields(status: TrainingJobStatus | None) -> Obj:
    """The operator's share of a status, in resource form (camelCase, JSON values)."""
    if status is None:
        return {}
    fields = set(OPERATOR_STATUS_FIELDS)
    return status.model_dump(mode="json", by_alias=True, exclude_none=True, include=fields)


def status_patch(current: TrainingJobStatus | None, desired: TrainingJobStatus) -> Obj:
    """Merge patch that turns the operator's fields of `current` into `desired`'s; the trainer's
    fields never appear in it, so a concurrent trainer report is never overwritten."""
    now, want = operator_fields(current), operator_fields(desired)
    patch: Obj = {key: value for key, value in want.items() if now.get(key) != value}
    patch.update({key: None for key in now if key not in want})
    return patch


class _State:
    """What one `decide` call works on: the observations and the status being built."""

    def __init__(self, tj: TrainingJob, job: BatchJob | None, now: dt.datetime) -> None:
        self.tj, self.job = tj, job
        self.now = now.astimezone(dt.UTC).replace(microsecond=0)  # metav1.Time has seconds
        self.observed = tj.status or TrainingJobStatus()
        self.status = self.observed.model_copy(deep=True)
        self.decision = Decision(self.status)

    @property
    def trainer_state(self) -> TrainerState | None:
        return self.observed.trainer.state if self.observed.trainer else None

    def cost(self) -> Decimal:
        return self.observed.cost_usd or Decimal("0")

    def budget(self) -> Decimal:
        return self.tj.spec.config.max_budget_usd

    def set(self, kind: Cond, value: bool | None, reason: Reason | str, message: str = "") -> None:
        status = ConditionStatus.UNKNOWN if value is None else ConditionStatus(str(value))
        conds = self.status.conditions or []
        gen = self.tj.metadata.generation
        self.status.conditions = set_condition(conds, kind, status, reason, message, gen, self.now)

    def is_true(self, kind: Cond) -> bool:
        cond: Condition | None = find_condition(self.status.conditions or [], kind)
        return cond is not None and cond.status == ConditionStatus.TRUE


def decide(tj: TrainingJob, job: BatchJob | None, data_error: str | None, now: dt.datetime) -> Decision:
    s = _State(tj, job, now)
    desired, meta = s.status, tj.metadata
    if desired.job_id is None and meta.uid:
        desired.job_id = UUID(meta.uid)
    desired.total_iterations = tj.spec.config.n_iterations
    desired.budget_usd = s.budget()
    desired.observed_generation = meta.generation if meta.generation is not None else 1
    if desired.phase is None or not desired.phase.is_terminal:
        if data_error is not None:
            _finish(s, TrainingPhase.FAILED, Reason.VALIDATION_FAILED, data_error)
        else:
            _active(s)
    s.decision.notifications = notifications(tj, desired)
    return s.decision


def _active(s: _State) -> None:
    if s.status.phase is None:
        s.status.phase = TrainingPhase.QUEUED
    if s.job:
        s.set(Cond.CREATED, True, Reason.TRAINER_JOB_CREATED, "trainer Job created")
    else:
        s.set(Cond.CREATED, True, Reason.VALIDATED, "training data validated")
    s.decision.want_job = True
    _progress(s)


def notifications(tj: TrainingJob, desired: TrainingJobStatus) -> list[Notification]:
    """Every notification due so far, in the order events happened; delivery skips those done."""
    status = tj.status or TrainingJobStatus()
    phase = desired.phase or TrainingPhase.QUEUED
    due: list[Notification] = []
    if desired.started_at or status.trainer:
        due.append(
            Notification(
                "training.job.started",
                WebhookEvent.JOB_STARTED,
                _base_data(tj, "running"),
                reason=Reason.STARTED,
                message="trainer started",
            )
        )
    current, done = status.current_iteration or 0, status.notified_progress_iteration or 0
    due += [progress_notification(tj, it) for it in range(done + PROGRESS_EVERY, current + 1, PROGRESS_EVERY)]
    due += _budget_warnings(tj)
    if phase.is_terminal:
        due.append(_terminal_notification(tj, desired))
    return due


def _progress(s: _State) -> None:
    finished = s.job.finished if s.job else None
    if finished == "Complete":
        _on_job_complete(s)
        return
    if finished == "Failed":
        _on_job_failed(s)
        return
    cancel = s.tj.spec.cancel is not None and s.tj.spec.cancel.requested
    if cancel or _over_budget(s):
        _stop(s, cancel)
        return
    _suspend_or_run(s)


def _over_budget(s: _State) -> bool:
    """The operator's own stop, for a trainer that did not stop itself: exact cost vs budget."""
    return s.trainer_state not in _SELF_STOPPED and s.cost() >= s.budget()


def _stop(s: _State, cancel: bool) -> None:
    s.decision.suspend_job = True if s.job else None
    if s.job is not None and not s.job.pods_gone:
        return  # wait for the trainer to checkpoint and exit
    if cancel:
        _cancelled(s)
    else:
        message = budget_message(s.cost(), s.budget())
        s.set(Cond.BUDGET_EXCEEDED, True, Reason.BUDGET_EXCEEDED, message)
        _finish(s, TrainingPhase.FAILED, Reason.BUDGET_EXCEEDED, message)


def _suspend_or_run(s: _State) -> None:
    from agentcore.controllers.trainingjob.children import kueue_managed

    if s.tj.spec.suspend:
        _suspend(s)
        return
    if s.job is not None and s.job.suspended and not kueue_managed(s.tj):
        s.decision.suspend_job = False
    if s.is_true(Cond.SUSPENDED):
        s.set(Cond.SUSPENDED, False, Reason.RESUMED, "job resumed from its latest checkpoint")
    # A pending pod counts as active but trains nothing: Running means a ready pod or a live trainer.
    trainer_running = s.trainer_state == TrainerState.RUNNING
    if s.job is not None and s.job.active > 0 and (s.job.ready > 0 or trainer_running):
        s.status.phase = TrainingPhase.RUNNING
        if s.status.started_at is None:
            s.status.started_at = s.now
        s.set(Cond.RUNNING, True, Reason.TRAINER_RUNNING, "trainer pod is running")


def _suspend(s: _State) -> None:
    s.decision.suspend_job = True if s.job else None
    if s.job is None or s.job.pods_gone:
        s.set(Cond.SUSPENDED, True, Reason.SUSPENDED, "trainer stopped after a checkpoint")
        s.set(Cond.RUNNING, False, Reason.SUSPENDED, "job is suspended")
    else:
        s.set(Cond.SUSPENDED, None, Reason.SUSPENDING, "waiting for the trainer to checkpoint and stop")


def _on_job_complete(s: _State) -> None:
    trainer = s.trainer_state
    if trainer == TrainerState.COMPLETED:
        message = "all iterations completed"
        s.set(Cond.COMPLETE, True, Reason.TRAINING_COMPLETE, message)
        _finish(s, TrainingPhase.COMPLETED, Reason.TRAINING_COMPLETE, message)
    elif trainer == TrainerState.BUDGET_EXCEEDED:
        message = "stopped before an iteration whose projected cost would pass the budget"
        s.set(Cond.BUDGET_EXCEEDED, True, Reason.BUDGET_EXCEEDED, message)
        _finish(s, TrainingPhase.FAILED, Reason.BUDGET_EXCEEDED, message)
    else:
        reported = trainer.value if trainer else "nothing"
        message = f"trainer Job completed but the trainer reported {reported}"
        _finish(s, TrainingPhase.FAILED, Reason.TRAINER_EXITED_EARLY, message)


def _on_job_failed(s: _State) -> None:
    failed = s.job.condition("Failed") if s.job else None
    trainer_message = s.observed.trainer.message if s.observed.trainer else None
    message = trainer_message or (failed.message if failed else None) or "trainer Job failed"
    reason = (failed.reason if failed else None) or Reason.JOB_FAILED
    _finish(s, TrainingPhase.FAILED, reason, message)


def _finish(s: _State, phase: TrainingPhase, reason: Reason | str, message: str) -> None:
    message = message[:MAX_MESSAGE]
    s.status.phase, s.status.reason, s.status.message = phase, str(reason), message
    if s.status.completed_at is None:
        s.status.completed_at = s.now
    s.set(Cond.RUNNING, False, reason, message)
    if phase == TrainingPhase.FAILED:
        s.set(Cond.FAILED, True, reason, message)


def _cancelled(s: _State) -> None:
    observed = s.observed
    checkpoints = sorted(observed.checkpoints or [], key=lambda c: c.iteration)
    cancel = s.tj.spec.cancel
    reason = (cancel.reason if cancel else None) or "cancelled by user"
    if s.status.cancellation is None:
        s.status.cancellation = Cancellation(
            cancelled_at=s.now,
            reason=reason,
            iterations_completed=observed.current_iteration or 0,
            checkpoint_saved=bool(checkpoints),
            checkpoint_id=checkpoints[-1].id if checkpoints else None,
        )
    s.set(Cond.CANCELLED, True, Reason.CANCELLED, reason)
    _finish(s, TrainingPhase.CANCELLED, Reason.CANCELLED, reason)


def budget_message(cost: Decimal, budget: Decimal) -> str:
    """Exact amounts: "reached" is true of what is shown, whenever it is observed."""
    return f"cost ${format_money(cost)} reached the budget ${format_money(budget)}"


def _budget_warnings(tj: TrainingJob) -> list[Notification]:
    status = tj.status or TrainingJobStatus()
    cost, budget = status.cost_usd or Decimal("0"), tj.spec.config.max_budget_usd
    if budget <= 0:
        return []
    used = cost / budget * 100
    return [_budget_warning(tj, t, cost, budget) for t in WARN_THRESHOLDS if used >= t]


def _budget_warning(tj: TrainingJob, threshold: int, cost: Decimal, budget: Decimal) -> Notification:
    shown_cost, shown_budget = money(cost), format_money(budget)
    data = {
        **_base_data(tj, "running"),
        "threshold_percent": threshold,
        "cost_usd": shown_cost,
        "budget_usd": shown_budget,
    }
    return Notification(
        f"training.budget.warning:{threshold}",
        WebhookEvent.BUDGET_WARNING,
        data,
        "Warning",
        Reason.BUDGET_WARNING,
        f"{threshold}% of the budget used (${shown_cost} of ${shown_budget})",
    )


def progress_notification(tj: TrainingJob, iteration: int) -> Notification:
    status = tj.status or TrainingJobStatus()
    metrics = status.metrics.to_resource() if status.metrics else {}
    data = {
        **_base_data(tj, "running"),
        "current_iteration": iteration,
        "total_iterations": tj.spec.config.n_iterations,
        "progress_percent": status.progress_percent,
        "cost_usd": _shown_cost(status),
        "metrics": _snake(metrics),
    }
    return Notification(
        f"training.job.progress:{iteration}",
        WebhookEvent.JOB_PROGRESS,
        data,
        reason=Reason.PROGRESS,
        message=f"iteration {iteration} reached",
    )


def _terminal_notification(tj: TrainingJob, desired: TrainingJobStatus) -> Notification:
    phase = desired.phase or TrainingPhase.FAILED
    data = _base_data(tj, phase.api_value)
    if phase == TrainingPhase.COMPLETED:
        return _completed(tj, data)
    if phase == TrainingPhase.CANCELLED:
        return _cancelled_notification(desired, data)
    data.update({"reason": desired.reason, "error": desired.message, "cost_usd": _shown_cost(tj.status)})
    return Notification(
        "training.job.failed",
        WebhookEvent.JOB_FAILED,
        data,
        "Warning",
        desired.reason or Reason.FAILED,
        str(desired.message),
    )


def _completed(tj: TrainingJob, data: Obj) -> Notification:
    status = tj.status or TrainingJobStatus()
    success = status.evaluation.success_rate if status.evaluation else None
    if success is None and status.metrics:
        success = status.metrics.success_rate
    data["final_metrics"] = {"success_rate": success, "cost_usd": _shown_cost(status)}
    return Notification(
        "training.job.completed",
        WebhookEvent.JOB_COMPLETED,
        data,
        reason=Reason.COMPLETED,
        message="training completed",
    )


def _cancelled_notification(desired: TrainingJobStatus, data: Obj) -> Notification:
    cancellation = desired.cancellation or Cancellation()
    data.update(
        {
            "reason": cancellation.reason,
            "checkpoint_id": cancellation.checkpoint_id,
            "iterations_completed": cancellation.iterations_completed,
        }
    )
    return Notification(
        "training.job.cancelled",
        WebhookEvent.JOB_CANCELLED,
        data,
        reason=Reason.CANCELLED,
        message=str(cancellation.reason),
    )


def _shown_cost(status: TrainingJobStatus | None) -> str:
    """Cost as the API shows money (two decimals), whatever precision the trainer reports."""
    return money(status.cost_usd if status and status.cost_usd is not None else Decimal("0"))


def _base_data(tj: TrainingJob, api_status: str) -> Obj:
    return {
        "job_id": tj.metadata.uid,
        "agent_id": tj.spec.agent_id,
        "status": api_status,
        "name": tj.metadata.name,
        "namespace": tj.metadata.namespace,
    }


def _snake(metrics: Obj) -> Obj:
    return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in metrics.items()}
