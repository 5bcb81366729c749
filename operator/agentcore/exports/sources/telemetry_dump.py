"""Telemetry: trajectories aggregated per job and every n iterations, in SQL."""

from __future__ import annotations

from agentcore.exports import sql
from agentcore.exports.schema import ChartSpec, Column, Dataset
from agentcore.exports.sources.base import (
    AGENT_ID,
    JOB_ID,
    JOB_NAME,
    TS,
    F,
    N,
    Source,
    SourceContext,
    summary_dataset,
    trajectory_metrics,
)

# --- telemetry -------------------------------------------------------------------------------------

TELEMETRY_COLUMNS = (
    JOB_ID,
    JOB_NAME,
    AGENT_ID,
    Column("iteration_start", N, "telemetry.iteration_start"),
    Column("iteration_end", N, "telemetry.iteration_end"),
    Column("trajectories", N, "telemetry.trajectories", group_size=True),
    Column("avg_reward", F, "telemetry.avg_reward"),
    Column("min_reward", F, "telemetry.min_reward"),
    Column("max_reward", F, "telemetry.max_reward"),
    Column("success_rate", F, "telemetry.success_rate"),
    Column("avg_advantage", F, "telemetry.avg_advantage"),
    Column("avg_execution_time_ms", F, "telemetry.avg_execution_time_ms"),
    Column("errors", N, "telemetry.errors"),
    Column("first_at", TS, "telemetry.first_at"),
    Column("last_at", TS, "telemetry.last_at"),
)


async def telemetry_rows(ctx: SourceContext) -> Dataset:
    scope, res = ctx.scope, ctx.config.telemetry_resolution or 1
    groups = await sql.one(ctx.db, sql.telemetry_groups(scope, res))
    return Dataset(
        f"Telemetry (every {res} iterations)" if res > 1 else "Telemetry per iteration",
        TELEMETRY_COLUMNS,
        sql.stream(ctx.db, sql.telemetry(scope, res)),
        ChartSpec("Mean reward per iteration", "iteration_start", "avg_reward"),
        estimated_rows=int(groups[0]),
        column_bytes={"job_id": 36, "job_name": 24, "agent_id": 24},
    )


# The aggregated level: no job or agent columns; a group's size is its number of distinct agents.
AGGREGATED_COLUMNS = (
    TELEMETRY_COLUMNS[3],  # iteration_start
    TELEMETRY_COLUMNS[4],  # iteration_end
    Column("agents", N, "telemetry.agents", group_size=True),
    Column("jobs", N, "telemetry.jobs"),
    Column("trajectories", N, "telemetry.trajectories"),
    *TELEMETRY_COLUMNS[6:],
)


async def telemetry_aggregated(ctx: SourceContext) -> Dataset:
    scope, res = ctx.scope, ctx.config.telemetry_resolution or 1
    query = sql.telemetry_across_agents(scope, res)
    groups = await sql.one(ctx.db, sql.groups_of(query))
    return Dataset(
        f"Telemetry across agents (every {res} iterations)" if res > 1 else "Telemetry across agents",
        AGGREGATED_COLUMNS,
        sql.stream(ctx.db, query),
        ChartSpec("Mean reward per iteration", "iteration_start", "avg_reward"),
        estimated_rows=int(groups[0]),
    )


async def telemetry_summary(ctx: SourceContext) -> Dataset:
    res = ctx.config.telemetry_resolution or 1
    groups = await sql.one(ctx.db, sql.telemetry_groups(ctx.scope, res))
    return summary_dataset(
        "Telemetry summary",
        [("telemetry_points", groups[0]), ("resolution", res), *await trajectory_metrics(ctx)],
    )


SOURCE = Source(rows=telemetry_rows, aggregated=telemetry_aggregated, summary=telemetry_summary)
