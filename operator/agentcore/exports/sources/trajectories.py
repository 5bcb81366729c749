"""Training trajectories, streamed row by row from the database."""

from __future__ import annotations

from agentcore.exports import sql
from agentcore.exports.schema import ChartSpec, Column, Dataset
from agentcore.exports.sources.base import (
    AGENT_ID,
    JOB_ID,
    JOB_NAME,
    TS,
    B,
    F,
    J,
    N,
    S,
    Source,
    SourceContext,
    summary_dataset,
    trajectory_metrics,
)
from agentcore.exports.sources.telemetry_dump import telemetry_aggregated

# --- trajectories ----------------------------------------------------------------------------------

TRAJECTORY_COLUMNS = (
    Column("trajectory_id", S, "trajectory.id"),
    JOB_ID,
    JOB_NAME,
    AGENT_ID,
    Column("iteration", N, "trajectory.iteration"),
    Column("group_index", N, "trajectory.group_index"),
    Column("sample_index", N, "trajectory.sample_index"),
    Column("query", S, "trajectory.query", free_text=True),
    Column("steps", J, "trajectory.steps", free_text=True),
    Column("reward", F, "trajectory.reward"),
    Column("normalized_reward", F, "trajectory.normalized_reward"),
    Column("advantage", F, "trajectory.advantage"),
    Column("success", B, "trajectory.success"),
    Column("execution_time_ms", N, "trajectory.execution_time_ms"),
    Column("error", S, "trajectory.error", free_text=True),
    Column("created_at", TS, "trajectory.created_at"),
)


async def trajectory_rows(ctx: SourceContext) -> Dataset:
    scope = ctx.scope
    size = await sql.one(ctx.db, sql.trajectory_size(scope))
    column_bytes = {
        "trajectory_id": 36,
        "job_id": 36,
        "query": size[1] or 0,
        "steps": size[2] or 0,
        "error": size[3] or 0,
        "job_name": size[4] or 0,
        "agent_id": size[5] or 0,
    }
    return Dataset(
        "Trajectories",
        TRAJECTORY_COLUMNS,
        sql.stream(ctx.db, sql.trajectories(scope)),
        ChartSpec("Reward per iteration", "iteration", "reward"),
        estimated_rows=int(size[0]),
        column_bytes=column_bytes,
    )


async def trajectory_summary(ctx: SourceContext) -> Dataset:
    return summary_dataset("Trajectories summary", await trajectory_metrics(ctx))


SOURCE = Source(rows=trajectory_rows, aggregated=telemetry_aggregated, summary=trajectory_summary)
