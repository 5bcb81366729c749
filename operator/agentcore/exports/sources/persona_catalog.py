"""Persona (agent) catalog: one row per agent over its TrainingJobs."""

from __future__ import annotations

from agentcore.exports import sql
from agentcore.exports.schema import ChartSpec, Column, Dataset, Row, batched
from agentcore.exports.sources.base import (
    AGENT_ID,
    TS,
    F,
    N,
    S,
    Source,
    SourceContext,
    group,
    mean,
    name_of,
    no_aggregated_form,
    parse_time,
    persona_config_specs,
    phase_of,
    summary_dataset,
)
from agentcore.exports.sql import GroupStats
from agentcore.storage.tables import Trajectory

# --- persona (agent) catalog -----------------------------------------------------------------------

PERSONA_COLUMNS = (
    AGENT_ID,
    Column("jobs", N, "agent.jobs"),
    Column("latest_job", S, "job.name", pii=True),  # job names are built from agent ids
    Column("latest_phase", S, "job.phase"),
    *(c for c, _ in persona_config_specs()),
    Column("trajectories", N, "agent.trajectories", group_size=True),
    Column("avg_reward", F, "agent.avg_reward"),
    Column("success_rate", F, "agent.success_rate"),
    Column("first_seen", TS, "agent.first_seen"),
    Column("last_seen", TS, "agent.last_seen"),
)


async def persona_rows(ctx: SourceContext) -> Dataset:
    by_agent = group(ctx.jobs(), lambda tj: tj.spec.agent_id)
    stats = await sql.stats_map(ctx.db, ctx.scope, Trajectory.agent_id) if ctx.engine is not None else {}
    config_getters = [get for _, get in persona_config_specs()]
    rows: list[Row] = []
    for agent in sorted(set(by_agent) | set(stats)):
        jobs = by_agent.get(agent, [])
        latest = jobs[-1] if jobs else None
        s = stats.get(agent, GroupStats())
        created = [parse_time(tj.metadata.creation_timestamp) for tj in jobs]
        rows.append(
            (
                agent,
                len(jobs),
                name_of(latest) if latest else None,
                phase_of(latest) if latest else None,
                *(get(latest, s) if latest else None for get in config_getters),
                s.count,
                s.avg_reward,
                s.success_rate,
                min((c for c in created if c), default=None),
                max((c for c in created if c), default=None),
            )
        )
    chart = ChartSpec("Mean reward per agent", "agent_id", "avg_reward", "bar")
    return Dataset("Agent catalog", PERSONA_COLUMNS, batched(rows), chart, estimated_rows=len(rows))


async def persona_summary(ctx: SourceContext) -> Dataset:
    data = await persona_rows(ctx)
    rows = [r async for batch in data.batches for r in batch]
    n_traj = sum(int(r[-5] or 0) for r in rows)
    return summary_dataset(
        "Agent catalog summary",
        [
            ("agents", len(rows)),
            ("jobs", sum(int(r[1]) for r in rows)),
            ("trajectories", n_traj),
            ("mean_avg_reward", mean(r[-4] for r in rows)),
            ("mean_success_rate", mean(r[-3] for r in rows)),
        ],
    )


SOURCE = Source(
    rows=persona_rows,
    aggregated=no_aggregated_form("persona_catalog"),
    summary=persona_summary,
)
