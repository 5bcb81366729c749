"""Project summary: one row per TrainingJob, per phase, or a handful of totals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentcore.api import labels
from agentcore.api.common import Condition
from agentcore.api.exports import ExportConfig
from agentcore.api.training import TrainingJob, TrainingPhase
from agentcore.exports.schema import ChartSpec, Column, Dataset, Row, batched
from agentcore.exports.sources.base import (
    AGENT_ID,
    JOB_ID,
    JOB_NAME,
    TS,
    D,
    F,
    FieldSpec,
    Getter,
    N,
    S,
    Source,
    SourceContext,
    duration,
    evaluation_specs,
    group,
    job_stats,
    last_condition,
    mean,
    metrics_of,
    name_of,
    parse_time,
    persona_config_specs,
    phase_of,
    phase_or_queued,
    status_of,
    sum_money,
    summary_dataset,
    table,
    uid_of,
)
from agentcore.exports.sql import GroupStats

# --- project summary --------------------------------------------------------------------------------


def _project_specs(cfg: ExportConfig) -> list[FieldSpec]:
    specs: list[FieldSpec] = [
        (JOB_ID, lambda tj, s: uid_of(tj)),
        (JOB_NAME, lambda tj, s: name_of(tj)),
        (AGENT_ID, lambda tj, s: tj.spec.agent_id),
        (Column("phase", S, "job.phase"), lambda tj, s: phase_of(tj)),
        (Column("reason", S, "job.reason"), lambda tj, s: status_of(tj).reason),
        (
            Column("created_by", S, "actor.id", pii=True),
            lambda tj, s: tj.metadata.annotation(labels.CREATED_BY),
        ),
        (
            Column("created_at", TS, "job.created_at"),
            lambda tj, s: parse_time(tj.metadata.creation_timestamp),
        ),
        (
            Column("started_at", TS, "job.started_at"),
            lambda tj, s: status_of(tj).started_at,
        ),
        (
            Column("completed_at", TS, "job.completed_at"),
            lambda tj, s: status_of(tj).completed_at,
        ),
        (Column("duration_seconds", F, "job.duration_seconds"), lambda tj, s: duration(tj)),
        (
            Column("current_iteration", N, "job.current_iteration"),
            lambda tj, s: status_of(tj).current_iteration,
        ),
        (
            Column("total_iterations", N, "job.total_iterations"),
            lambda tj, s: status_of(tj).total_iterations,
        ),
        (
            Column("progress_percent", F, "job.progress_percent"),
            lambda tj, s: status_of(tj).progress_percent,
        ),
        (Column("cost_usd", D, "job.cost_usd"), lambda tj, s: status_of(tj).cost_usd),
        (Column("budget_usd", D, "job.budget_usd"), lambda tj, s: status_of(tj).budget_usd),
        (Column("train_loss", F, "job.train_loss"), lambda tj, s: metrics_of(tj).train_loss),
        (Column("avg_reward", F, "job.avg_reward"), lambda tj, s: metrics_of(tj).avg_reward),
        (Column("success_rate", F, "job.success_rate"), lambda tj, s: metrics_of(tj).success_rate),
        (
            Column("trajectories_generated", N, "job.trajectories_generated"),
            lambda tj, s: metrics_of(tj).trajectories_generated,
        ),
        (
            Column("checkpoints", N, "job.checkpoints"),
            lambda tj, s: len(status_of(tj).checkpoints or []),
        ),
        (
            Column("best_checkpoint_id", S, "checkpoint.id"),
            lambda tj, s: status_of(tj).best_checkpoint_id,
        ),
    ]
    if cfg.include_telemetry:
        specs += [
            (Column("trajectories_stored", N, "telemetry.trajectories"), lambda tj, s: s.count),
            (Column("stored_avg_reward", F, "telemetry.avg_reward"), lambda tj, s: s.avg_reward),
            (Column("stored_success_rate", F, "telemetry.success_rate"), lambda tj, s: s.success_rate),
            (Column("last_iteration_stored", N, "telemetry.last_iteration"), lambda tj, s: s.last_iteration),
        ]
    if cfg.include_reliability:
        specs += evaluation_specs()
    if cfg.include_personas:
        specs += persona_config_specs()
    if cfg.include_events:
        specs += [
            (
                Column("last_condition", S, "job.condition.type"),
                _of_last_condition(lambda c: c.type),
            ),
            (
                Column("last_condition_reason", S, "job.condition.reason"),
                _of_last_condition(lambda c: c.reason),
            ),
            (
                Column("last_transition_at", TS, "job.condition.time"),
                _of_last_condition(lambda c: c.last_transition_time),
            ),
        ]
    return specs


def _of_last_condition(read: Callable[[Condition], Any]) -> Getter:
    def get(tj: TrainingJob, stats: GroupStats) -> Any:
        condition = last_condition(tj)
        return read(condition) if condition is not None else None

    return get


async def project_rows(ctx: SourceContext) -> Dataset:
    stats = await job_stats(ctx) if ctx.config.include_telemetry else {}
    items = [(tj, stats.get(uid_of(tj), GroupStats())) for tj in ctx.jobs()]
    chart = ChartSpec("Mean reward per job", "job_name", "avg_reward", "bar")
    return table("Project summary", _project_specs(ctx.config), items, chart)


PHASE_COLUMNS = (
    Column("phase", S, "job.phase"),
    Column("agents", N, "job.agents", group_size=True),  # k counts distinct agents, not jobs
    Column("jobs", N, "job.count"),
    Column("total_cost_usd", D, "job.cost_usd"),
    Column("total_budget_usd", D, "job.budget_usd"),
    Column("mean_progress_percent", F, "job.progress_percent"),
    Column("mean_avg_reward", F, "job.avg_reward"),
    Column("mean_success_rate", F, "job.success_rate"),
    Column("trajectories_generated", N, "job.trajectories_generated"),
)


async def project_aggregated(ctx: SourceContext) -> Dataset:
    groups = group(ctx.jobs(), phase_or_queued)
    rows: list[Row] = [
        (
            phase,
            len({tj.spec.agent_id for tj in jobs}),
            len(jobs),
            sum_money(status_of(tj).cost_usd for tj in jobs),
            sum_money(status_of(tj).budget_usd for tj in jobs),
            mean(status_of(tj).progress_percent for tj in jobs),
            mean(metrics_of(tj).avg_reward for tj in jobs),
            mean(metrics_of(tj).success_rate for tj in jobs),
            sum(metrics_of(tj).trajectories_generated or 0 for tj in jobs),
        )
        for phase, jobs in sorted(groups.items())
    ]
    chart = ChartSpec("Jobs per phase", "phase", "jobs", "bar")
    return Dataset("Project summary by phase", PHASE_COLUMNS, batched(rows), chart, estimated_rows=len(rows))


async def project_summary(ctx: SourceContext) -> Dataset:
    jobs = ctx.jobs()
    phases = [status_of(tj).phase or TrainingPhase.QUEUED for tj in jobs]
    done = sum(p.is_terminal for p in phases)
    return summary_dataset(
        "Project summary",
        [
            ("jobs", len(jobs)),
            *[
                (f"jobs_{p.value.lower()}", phases.count(p))
                for p in TrainingPhase  # Queued, Running, Completed, Failed, Cancelled
            ],
            ("total_cost_usd", sum_money(status_of(tj).cost_usd for tj in jobs)),
            ("total_budget_usd", sum_money(status_of(tj).budget_usd for tj in jobs)),
            ("trajectories_generated", sum(metrics_of(tj).trajectories_generated or 0 for tj in jobs)),
            ("mean_avg_reward", mean(metrics_of(tj).avg_reward for tj in jobs)),
            ("mean_success_rate", mean(metrics_of(tj).success_rate for tj in jobs)),
            ("completion_rate", phases.count(TrainingPhase.COMPLETED) / done if done else None),
        ],
    )


SOURCE = Source(rows=project_rows, aggregated=project_aggregated, summary=project_summary)
