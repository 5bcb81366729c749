"""Reliability report: failures, retries and budget stops per job."""

from __future__ import annotations

from agentcore.api.training import TrainingJob, TrainingPhase
from agentcore.exports.schema import ChartSpec, Column, Dataset, Row, batched
from agentcore.exports.sources.base import (
    AGENT_ID,
    JOB_ID,
    JOB_NAME,
    B,
    D,
    F,
    FieldSpec,
    N,
    S,
    Source,
    SourceContext,
    baseline_of,
    budget_exceeded,
    evaluation_specs,
    group,
    job_stats,
    mean,
    name_of,
    phase_of,
    phase_or_queued,
    retries,
    status_of,
    summary_dataset,
    table,
    uid_of,
    value_of,
)
from agentcore.exports.sql import GroupStats

# --- reliability --------------------------------------------------------------------------------------


def _reliability_specs(ctx: SourceContext) -> list[FieldSpec]:
    return [
        (JOB_ID, lambda tj, s: uid_of(tj)),
        (JOB_NAME, lambda tj, s: name_of(tj)),
        (AGENT_ID, lambda tj, s: tj.spec.agent_id),
        (Column("phase", S, "job.phase"), lambda tj, s: phase_of(tj)),
        (Column("reason", S, "job.reason"), lambda tj, s: status_of(tj).reason),
        (
            Column("trainer_state", S, "job.trainer_state"),
            lambda tj, s: _trainer_state(tj),
        ),
        (
            Column("message", S, "job.message", free_text=True),
            lambda tj, s: status_of(tj).message or _trainer_message(tj),
        ),
        (Column("retries", N, "job.retries"), lambda tj, s: retries(ctx, tj)),
        (
            Column("cancelled", B, "job.cancelled"),
            lambda tj, s: status_of(tj).phase == TrainingPhase.CANCELLED,
        ),
        (
            Column("budget_remaining_percent", F, "job.budget_remaining_percent"),
            lambda tj, s: status_of(tj).budget_remaining_percent,
        ),
        (Column("cost_usd", D, "job.cost_usd"), lambda tj, s: status_of(tj).cost_usd),
        (Column("trajectories", N, "telemetry.trajectories"), lambda tj, s: s.count),
        (Column("error_trajectories", N, "telemetry.errors"), lambda tj, s: s.errors),
        (Column("error_rate", F, "telemetry.error_rate"), lambda tj, s: s.error_rate),
        *evaluation_specs(),
    ]


def _trainer_state(tj: TrainingJob) -> str | None:
    trainer = status_of(tj).trainer
    return value_of(trainer.state) if trainer else None


def _trainer_message(tj: TrainingJob) -> str | None:
    trainer = status_of(tj).trainer
    return trainer.message if trainer else None


async def reliability_rows(ctx: SourceContext) -> Dataset:
    stats = await job_stats(ctx)
    items = [(tj, stats.get(uid_of(tj), GroupStats())) for tj in ctx.jobs()]
    chart = ChartSpec("Trajectory error rate per job", "job_name", "error_rate", "bar")
    return table("Reliability report", _reliability_specs(ctx), items, chart)


OUTCOME_COLUMNS = (
    Column("outcome", S, "job.outcome"),
    Column("agents", N, "job.agents", group_size=True),  # k counts distinct agents, not jobs
    Column("jobs", N, "job.count"),
    Column("retries", N, "job.retries"),
    Column("budget_stops", N, "job.budget_stops"),
    Column("error_trajectories", N, "telemetry.errors"),
    Column("error_rate", F, "telemetry.error_rate"),
    Column("significant_improvements", N, "evaluation.significant"),
    Column("mean_p_value", F, "evaluation.p_value"),
)


def _outcome(tj: TrainingJob) -> str:
    phase = phase_or_queued(tj)
    reason = status_of(tj).reason
    return f"{phase}/{reason}" if reason and reason != phase else phase


async def reliability_aggregated(ctx: SourceContext) -> Dataset:
    stats = await job_stats(ctx)
    rows: list[Row] = []
    for outcome, jobs in sorted(group(ctx.jobs(), _outcome).items()):
        s = [stats.get(uid_of(tj), GroupStats()) for tj in jobs]
        total, errors = sum(x.count for x in s), sum(x.errors for x in s)
        rows.append(
            (
                outcome,
                len({tj.spec.agent_id for tj in jobs}),
                len(jobs),
                sum(retries(ctx, tj) for tj in jobs),
                sum(budget_exceeded(tj) for tj in jobs),
                errors,
                errors / total if total else None,
                sum(bool(baseline_of(tj).statistically_significant) for tj in jobs),
                mean(baseline_of(tj).p_value for tj in jobs),
            )
        )
    chart = ChartSpec("Jobs per outcome", "outcome", "jobs", "bar")
    return Dataset("Reliability by outcome", OUTCOME_COLUMNS, batched(rows), chart, estimated_rows=len(rows))


async def reliability_summary(ctx: SourceContext) -> Dataset:
    jobs, stats = ctx.jobs(), await job_stats(ctx)
    phases = [status_of(tj).phase for tj in jobs]
    done = sum(p is not None and p.is_terminal for p in phases)
    s = [stats.get(uid_of(tj), GroupStats()) for tj in jobs]
    total = sum(x.count for x in s)
    return summary_dataset(
        "Reliability summary",
        [
            ("jobs", len(jobs)),
            ("jobs_failed", phases.count(TrainingPhase.FAILED)),
            ("jobs_cancelled", phases.count(TrainingPhase.CANCELLED)),
            ("budget_stops", sum(budget_exceeded(tj) for tj in jobs)),
            ("retries", sum(retries(ctx, tj) for tj in jobs)),
            ("failure_rate", phases.count(TrainingPhase.FAILED) / done if done else None),
            ("error_rate", sum(x.errors for x in s) / total if total else None),
            (
                "significant_improvements",
                sum(bool(baseline_of(tj).statistically_significant) for tj in jobs),
            ),
            ("mean_p_value", mean(baseline_of(tj).p_value for tj in jobs)),
        ],
    )


SOURCE = Source(
    rows=reliability_rows,
    aggregated=reliability_aggregated,
    summary=reliability_summary,
)
