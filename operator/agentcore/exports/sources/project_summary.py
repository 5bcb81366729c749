"""Project summary: one row per TrainingJob, per phase, or a handful of totals."""

from __future__ import annotations

from agentcore.api import labels
from agentcore.api.exports import ExportConfig
from agentcore.exports.schema import ChartSpec, Column, Dataset, Row, batched
from agentcore.exports.sources.base import (
    AGENT_ID,
    JOB_ID,
    JOB_NAME,
    TS,
    D,
    F,
    FieldSpec,
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
    metric,
    money,
    name_of,
    parse_time,
    persona_config_specs,
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
        (AGENT_ID, lambda tj, s: (tj.get("spec") or {}).get("agentId")),
        (Column("phase", S, "job.phase"), lambda tj, s: status_of(tj).get("phase")),
        (Column("reason", S, "job.reason"), lambda tj, s: status_of(tj).get("reason")),
        (
            Column("created_by", S, "actor.id", pii=True),
            lambda tj, s: (tj["metadata"].get("annotations") or {}).get(labels.CREATED_BY),
        ),
        (
            Column("created_at", TS, "job.created_at"),
            lambda tj, s: parse_time(tj["metadata"].get("creationTimestamp")),
        ),
        (
            Column("started_at", TS, "job.started_at"),
            lambda tj, s: parse_time(status_of(tj).get("startedAt")),
        ),
        (
            Column("completed_at", TS, "job.completed_at"),
            lambda tj, s: parse_time(status_of(tj).get("completedAt")),
        ),
        (Column("duration_seconds", F, "job.duration_seconds"), lambda tj, s: duration(tj)),
        (
            Column("current_iteration", N, "job.current_iteration"),
            lambda tj, s: status_of(tj).get("currentIteration"),
        ),
        (
            Column("total_iterations", N, "job.total_iterations"),
            lambda tj, s: status_of(tj).get("totalIterations"),
        ),
        (
            Column("progress_percent", F, "job.progress_percent"),
            lambda tj, s: status_of(tj).get("progressPercent"),
        ),
        (Column("cost_usd", D, "job.cost_usd"), lambda tj, s: money(status_of(tj).get("costUsd"))),
        (Column("budget_usd", D, "job.budget_usd"), lambda tj, s: money(status_of(tj).get("budgetUsd"))),
        (Column("train_loss", F, "job.train_loss"), lambda tj, s: metric(tj, "trainLoss")),
        (Column("avg_reward", F, "job.avg_reward"), lambda tj, s: metric(tj, "avgReward")),
        (Column("success_rate", F, "job.success_rate"), lambda tj, s: metric(tj, "successRate")),
        (
            Column("trajectories_generated", N, "job.trajectories_generated"),
            lambda tj, s: metric(tj, "trajectoriesGenerated"),
        ),
        (
            Column("checkpoints", N, "job.checkpoints"),
            lambda tj, s: len(status_of(tj).get("checkpoints") or []),
        ),
        (
            Column("best_checkpoint_id", S, "checkpoint.id"),
            lambda tj, s: status_of(tj).get("bestCheckpointId"),
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
                lambda tj, s: last_condition(tj).get("type"),
            ),
            (
                Column("last_condition_reason", S, "job.condition.reason"),
                lambda tj, s: last_condition(tj).get("reason"),
            ),
            (
                Column("last_transition_at", TS, "job.condition.time"),
                lambda tj, s: parse_time(last_condition(tj).get("lastTransitionTime")),
            ),
        ]
    return specs


async def project_rows(ctx: SourceContext) -> Dataset:
    stats = await job_stats(ctx) if ctx.config.include_telemetry else {}
    items = [(tj, stats.get(uid_of(tj), GroupStats())) for tj in ctx.jobs()]
    chart = ChartSpec("Mean reward per job", "job_name", "avg_reward", "bar")
    return table("Project summary", _project_specs(ctx.config), items, chart)


PHASE_COLUMNS = (
    Column("phase", S, "job.phase"),
    Column("jobs", N, "job.count", group_size=True),
    Column("total_cost_usd", D, "job.cost_usd"),
    Column("total_budget_usd", D, "job.budget_usd"),
    Column("mean_progress_percent", F, "job.progress_percent"),
    Column("mean_avg_reward", F, "job.avg_reward"),
    Column("mean_success_rate", F, "job.success_rate"),
    Column("trajectories_generated", N, "job.trajectories_generated"),
)


async def project_aggregated(ctx: SourceContext) -> Dataset:
    groups = group(ctx.jobs(), lambda tj: status_of(tj).get("phase") or "Queued")
    rows: list[Row] = [
        (
            phase,
            len(jobs),
            sum_money(status_of(tj).get("costUsd") for tj in jobs),
            sum_money(status_of(tj).get("budgetUsd") for tj in jobs),
            mean(status_of(tj).get("progressPercent") for tj in jobs),
            mean(metric(tj, "avgReward") for tj in jobs),
            mean(metric(tj, "successRate") for tj in jobs),
            sum(int(metric(tj, "trajectoriesGenerated") or 0) for tj in jobs),
        )
        for phase, jobs in sorted(groups.items())
    ]
    chart = ChartSpec("Jobs per phase", "phase", "jobs", "bar")
    return Dataset("Project summary by phase", PHASE_COLUMNS, batched(rows), chart, estimated_rows=len(rows))


async def project_summary(ctx: SourceContext) -> Dataset:
    jobs = ctx.jobs()
    phases = [(status_of(tj).get("phase") or "Queued") for tj in jobs]
    done = sum(p in ("Completed", "Failed", "Cancelled") for p in phases)
    return summary_dataset(
        "Project summary",
        [
            ("jobs", len(jobs)),
            *[
                (f"jobs_{p.lower()}", phases.count(p))
                for p in ("Queued", "Running", "Completed", "Failed", "Cancelled")
            ],
            ("total_cost_usd", sum_money(status_of(tj).get("costUsd") for tj in jobs)),
            ("total_budget_usd", sum_money(status_of(tj).get("budgetUsd") for tj in jobs)),
            ("trajectories_generated", sum(int(metric(tj, "trajectoriesGenerated") or 0) for tj in jobs)),
            ("mean_avg_reward", mean(metric(tj, "avgReward") for tj in jobs)),
            ("mean_success_rate", mean(metric(tj, "successRate") for tj in jobs)),
            ("completion_rate", phases.count("Completed") / done if done else None),
        ],
    )


SOURCE = Source(
    rows=project_rows, aggregated=project_aggregated, summary=project_summary, needs_trainingjobs=True
)
