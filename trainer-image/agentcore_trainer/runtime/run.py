"""One training run with its side effects: resume from the newest checkpoint, GRPO iterations,
trajectories to the database, cost against the budget, checkpoints to the object store, progress
to a status sink, evaluation at the end, and a clean stop on request (SIGTERM).

Crash safety: an iteration's trajectories are written (idempotently, by deterministic id) before
the checkpoint that covers it; cost, budget warnings and iteration live in the checkpoint. A run
killed at any point resumes from its newest valid checkpoint, redoes the same iterations bit for
bit (the RNG is in the state), adds no duplicate trajectory and counts no cost twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from agentcore.api.common import format_money, parse_money
from agentcore.api.training import GRPOConfig, TrainerState
from agentcore.cost import DEFAULT_PRICES, CostMeter, compute_cost, estimate_iteration_cost, money
from agentcore.storage.checkpoints import CheckpointInfo, CheckpointManager
from agentcore_trainer.distributed import SINGLE, Collective, is_primary
from agentcore_trainer.runtime.backends import (
    Backend,
    RunShape,
    Usage,
    evaluate_against_initial,
    make_backend,
)
from agentcore_trainer.runtime.budget import BudgetGuard
from agentcore_trainer.runtime.reporting import StatusSink

log = logging.getLogger("agentcore.trainer")
MAX_EVAL_QUERIES = 200
DEFAULT_PRICE = DEFAULT_PRICES["builtin-cpu"]  # replaced by the backend's price at start
EXIT_CODES = {
    TrainerState.COMPLETED: 0,
    TrainerState.BUDGET_EXCEEDED: 0,
    TrainerState.STOPPED: 143,
    TrainerState.FAILED: 1,
}


class TrajectoryWriter(Protocol):
    """Where trajectories go: the repository (standalone) or the ingestion endpoint (in a cluster)."""

    async def add_batch(self, rows: Sequence[dict[str, Any]]) -> int: ...


@dataclass(frozen=True)
class RunIdentity:
    job_id: str
    name: str
    namespace: str
    agent_id: str
    pod: str | None = None


@dataclass
class RunInputs:
    config: GRPOConfig
    training: list[dict[str, Any]]
    evaluation: list[dict[str, Any]] = field(default_factory=list)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class TrainingRun:
    def __init__(
        self,
        ident: RunIdentity,
        inputs: RunInputs,
        repo: TrajectoryWriter,
        checkpoints: CheckpointManager,
        sink: StatusSink,
        stop: asyncio.Event,
        comm: Collective = SINGLE,
    ) -> None:
        self.ident, self.inputs, self.repo = ident, inputs, repo
        self.checkpoints, self.sink, self.stop = checkpoints, sink, stop
        # With several ranks every one runs this loop in lockstep (same decisions from the same
        # all-gathered reports); only rank 0 writes: trajectories, checkpoints, status.
        self.comm, self.primary = comm, is_primary(comm)
        cfg = inputs.config
        self.meter = CostMeter(DEFAULT_PRICE)
        self.guard = BudgetGuard(
            cfg.max_budget_usd, estimate_iteration_cost(cfg.batch_size, cfg.n_trajectories_per_query)
        )
        self.trainer: Backend | None = None
        self.last_checkpoint: CheckpointInfo | None = None
        self.validation: float | None = None
        self._iteration_seconds: list[float] = []
        # The checkpoints as last read from the object store. This run is their only writer, so
        # they change only when it saves one: re-read then, not on every report (a LIST and a GET
        # per manifest each iteration was most of an iteration's cost with small batches).
        self._manifests: list[CheckpointInfo] | None = None

    # -- driver ------------------------------------------------------------------------------------
    async def run(self) -> TrainerState:
        trainer = await self._start()
        cfg = self.inputs.config
        outcome = TrainerState.COMPLETED
        while trainer.iteration < cfg.n_iterations:
            # SIGTERM to any rank stops them all at the same iteration boundary.
            if await asyncio.to_thread(self.comm.any, self.stop.is_set()):
                outcome = TrainerState.STOPPED
                break
            if not self.guard.allows_next(self.meter.total):
                outcome = TrainerState.BUDGET_EXCEEDED
                break
            await self._iteration(trainer)
        await self._finish(trainer, outcome)
        # No rank leaves before rank 0 has checkpointed and reported: a rank that exited 0 early
        # would leave a restarted rank 0 alone at the rendezvous.
        await asyncio.to_thread(self.comm.barrier)
        return outcome

    async def _start(self) -> Backend:
        cfg = self.inputs.config
        # Rank 0 picks the checkpoint and every rank starts from its bytes: the same state everywhere.
        resumed = await asyncio.to_thread(self.checkpoints.latest_valid) if self.primary else None
        resumed = await asyncio.to_thread(self.comm.broadcast, resumed)
        blob = None
        if resumed is not None:
            info, blob = resumed
            self.meter.total = Decimal(info.cost_usd)
            self.guard.warned = set(info.extra.get("budget_warnings", []))
            self.validation = info.validation_score
            self.last_checkpoint = info
            log.info("resuming from checkpoint %s at iteration %d", info.id, info.iteration)
        seed = cfg.seed if cfg.seed is not None else int(self.ident.job_id.replace("-", "")[:8], 16)
        shape = RunShape(cfg, self.inputs.training, seed, self.ident.job_id, self.ident.namespace, self.comm)
        # Loading a language model takes seconds to minutes: off the event loop (signals still work).
        self.trainer = await asyncio.to_thread(make_backend, shape, blob)
        self.meter.price = self.trainer.price
        await self._report(self.trainer, {"trainer": self._trainer_report(TrainerState.RUNNING)})
        return self.trainer

    async def _iteration(self, trainer: Backend) -> None:
        cfg = self.inputs.config
        started = time.monotonic()
        report = await asyncio.to_thread(trainer.step)  # CPU-bound: keep the loop free for signals
        device = compute_cost(report.metrics.get("compute_seconds", 0.0), trainer.device_price_per_hour)
        iteration_cost = self.meter.add(
            int(report.metrics["input_tokens"]), int(report.metrics["output_tokens"]), device
        )
        self.guard.record(iteration_cost)
        if self.primary:  # the report holds every rank's trajectories
            await self.repo.add_batch(
                self._rows(report.trajectories, report.iteration, cfg.n_trajectories_per_query)
            )
        self._iteration_seconds.append(time.monotonic() - started)
        if self.inputs.evaluation and report.iteration % cfg.evaluation_interval == 0:
            self.validation = await asyncio.to_thread(self._validation_accuracy, trainer)
        if report.iteration % cfg.checkpoint_interval == 0:
            await self._checkpoint(trainer)
        await self._report(trainer, self._progress(trainer, report.metrics))

    async def _finish(self, trainer: Backend, outcome: TrainerState) -> None:
        if self.last_checkpoint is None or self.last_checkpoint.iteration != trainer.iteration:
            await self._checkpoint(trainer)
        # The whole progress again, not only the outcome: the last iteration's report may have
        # been the one lost to an apiserver restart.
        status: dict[str, Any] = {"trainer": self._trainer_report(outcome), **self._position(trainer)}
        if outcome == TrainerState.COMPLETED and self.inputs.evaluation and self.primary:
            status["evaluation"] = await asyncio.to_thread(self._final_evaluation, trainer)
        status.update(self._budget_fields())
        await self._report(trainer, status, final=True)
        log.info(
            "trainer finished: %s at iteration %d, cost $%s",
            outcome.value,
            trainer.iteration,
            money(self.meter.total),
        )

    # -- pieces --------------------------------------------------------------------------------------
    def _rows(self, records: list[dict[str, Any]], iteration: int, group_size: int) -> list[dict[str, Any]]:
        created = _now()
        return [
            {
                "id": rec["trajectory_id"],
                "job_id": self.ident.job_id,
                "job_name": self.ident.name,
                "namespace": self.ident.namespace,
                "agent_id": self.ident.agent_id,
                "iteration": iteration,
                "group_index": int(rec["group"]),
                "sample_index": k % group_size,
                "query": rec["query"],
                "steps": rec["steps"],
                "reward": _finite(rec["reward"]),
                "normalized_reward": _finite(rec["normalized_reward"]),
                "advantage": _finite(rec["advantage"]),
                "success": bool(rec["success"]),
                "execution_time_ms": int(rec["execution_time_ms"]),
                "error": rec.get("error"),
                "created_at": created,
            }
            for k, rec in enumerate(records)
        ]

    async def _checkpoint(self, trainer: Backend) -> None:
        if not self.primary:
            return
        blob = await asyncio.to_thread(trainer.checkpoint)
        extra = {
            "budget_warnings": sorted(self.guard.warned),
            "trajectories_generated": trainer.counters.get("trajectories_generated", 0),
        }
        self.last_checkpoint = await asyncio.to_thread(
            self.checkpoints.save, blob, trainer.iteration, str(self.meter.total), self.validation, extra,
            trainer.checkpoint_suffix,
        )  # fmt: skip
        self._manifests = None  # retention may have pruned others too

    def _eval_queries(self) -> list[dict[str, Any]]:
        return self.inputs.evaluation[:MAX_EVAL_QUERIES]

    def _meter(self, usage: Usage) -> None:
        """Evaluation rollouts cost tokens too (counted against the budget like training ones)."""
        self.guard.record(self.meter.add(usage.input_tokens, usage.output_tokens))

    def _validation_accuracy(self, trainer: Backend) -> float:
        result, usage = trainer.evaluate(self._eval_queries())
        self._meter(usage)
        return float(result.success_rate)

    def _final_evaluation(self, trainer: Backend) -> dict[str, Any]:
        started = time.monotonic()
        body, usage = evaluate_against_initial(trainer, self._eval_queries())
        self._meter(usage)
        return evaluation_status(
            body,
            self.last_checkpoint.id if self.last_checkpoint else None,
            int((time.monotonic() - started) * 1000),
        )

    def _progress(self, trainer: Backend, metrics: dict[str, float]) -> dict[str, Any]:
        cfg = self.inputs.config
        status: dict[str, Any] = {
            **self._position(trainer),
            "metrics": _metrics(metrics, trainer, self.validation),
            **self._budget_fields(),
        }
        remaining = cfg.n_iterations - trainer.iteration
        if self._iteration_seconds and remaining > 0:
            recent = self._iteration_seconds[-10:]
            eta = _now() + dt.timedelta(seconds=sum(recent) / len(recent) * remaining)
            status["estimatedCompletion"] = _stamp(eta)
        return status

    def _position(self, trainer: Backend) -> dict[str, Any]:
        done, total = trainer.iteration, self.inputs.config.n_iterations
        return {"currentIteration": done, "progressPercent": round(min(100.0, done / total * 100), 1)}

    def _budget_fields(self) -> dict[str, Any]:
        spent = self.meter.total
        fields: dict[str, Any] = {
            # Exact, not rounded to cents: the operator compares it with the budget, and a rounded
            # $0.10 would read as "reached" for a run still up to $0.005 under a $0.10 budget.
            "costUsd": exact_money(spent),
            "budgetRemainingPercent": self.guard.remaining_percent(spent),
        }
        self.guard.new_warnings(spent)
        if self.guard.warned:
            fields["budgetWarnings"] = sorted(self.guard.warned)
        return fields

    def _trainer_report(self, state: TrainerState, message: str | None = None) -> dict[str, Any]:
        report: dict[str, Any] = {"state": state.value, "updatedAt": _stamp(_now())}
        if self.ident.pod:
            report["pod"] = self.ident.pod
        if message:
            report["message"] = message[:4000]
        return report

    async def _report(self, trainer: Backend, status: dict[str, Any], final: bool = False) -> None:
        if not self.primary:
            return
        if self._manifests is None:
            self._manifests = await asyncio.to_thread(self.checkpoints.manifests)
        manifests = self._manifests
        status["checkpoints"] = [c.to_status() for c in manifests]
        best = max(
            (c for c in manifests if c.validation_score is not None),
            key=lambda c: (c.validation_score or 0.0, c.iteration),
            default=None,
        )
        if best is not None or manifests:
            status["bestCheckpointId"] = (best or manifests[-1]).id
        await self.sink.report(status, final=final)

    async def report_failure(self, error: str) -> None:
        if not self.primary:
            return
        await self.sink.report({"trainer": self._trainer_report(TrainerState.FAILED, error)}, final=True)


def _metrics(metrics: dict[str, float], trainer: Backend, validation: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "trainLoss": _finite(metrics.get("train_loss", 0.0)),
        "avgReward": _finite(metrics.get("avg_reward", 0.0)),
        "rewardStd": max(0.0, _finite(metrics.get("reward_std", 0.0))),
        "successRate": _fraction(metrics.get("success_rate", 0.0)),
        "kl": _finite(metrics.get("kl", 0.0)),
        "clipRatio": _fraction(metrics.get("clip_ratio", 0.0)),
        "fracRewardZeroStd": _fraction(metrics.get("frac_reward_zero_std", 0.0)),
        "trajectoriesGenerated": int(trainer.counters.get("trajectories_generated", 0)),
    }
    if validation is not None:
        out["validationAccuracy"] = _fraction(validation)
    return out


def evaluation_status(body: dict[str, Any], checkpoint_id: str | None, duration_ms: int) -> dict[str, Any]:
    """training.evaluate's body → the TrainingJob status `evaluation` (camelCase, flat metrics)."""
    metrics, comparison = body["metrics"], body["baseline_comparison"]
    status: dict[str, Any] = {
        "successRate": _fraction(metrics["success_rate"]),
        "avgReward": _finite(metrics["avg_reward"]),
        "avgSteps": max(0.0, _finite(metrics["avg_steps"])),
        "baselineComparison": {
            "successRateImprovement": _finite(comparison["success_rate_improvement"]),
            "avgRewardImprovement": _finite(comparison["avg_reward_improvement"]),
            "pValue": _fraction(comparison["p_value"]),
            "statisticallySignificant": bool(comparison["statistically_significant"]),
        },
        "queriesEvaluated": int(body["queries_evaluated"]),
        "evaluationDurationMs": duration_ms,
    }
    if metrics.get("tool_accuracy") is not None:
        status["toolAccuracy"] = _fraction(metrics["tool_accuracy"])
    if checkpoint_id:
        status["checkpointId"] = checkpoint_id
    return status


def _finite(value: Any) -> float:
    number = float(value)
    return number if math.isfinite(number) else 0.0


def _fraction(value: Any) -> float:
    return min(1.0, max(0.0, _finite(value)))


def exact_money(amount: Decimal) -> str:
    """The status' Money string of an exact amount: at least cents, every finer digit kept."""
    return format_money(parse_money(amount))
