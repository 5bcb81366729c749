"""Node comparison: chosen TrainingJobs or checkpoints side by side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentcore.api.training import TrainingJob
from agentcore.exports import sql
from agentcore.exports.schema import ChartSpec, Column, Dataset, Row, batched
from agentcore.exports.sources.base import (
    AGENT_ID,
    JOB_NAME,
    D,
    F,
    N,
    S,
    Source,
    SourceContext,
    SourceError,
    job_stats,
    metrics_of,
    name_of,
    no_aggregated_form,
    phase_of,
    status_of,
    summary_dataset,
    uid_of,
)
from agentcore.exports.sql import GroupStats

# --- node comparison ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    node_id: str
    kind: str  # "job" or "checkpoint"
    tj: TrainingJob
    iteration: int | None
    validation_score: float | None


def resolve_nodes(jobs: list[TrainingJob], node_ids: list[str] | None) -> list[Node]:
    """node_ids name TrainingJobs (name or uid) or checkpoints (id, or "<job>/<checkpoint id>");
    none means every selected job. Unknown ids are an error, not silently empty rows."""
    if not node_ids:
        return [_job_node(tj, name_of(tj)) for tj in jobs]
    nodes, unknown = [], []
    for node_id in node_ids:
        node = _find_node(jobs, node_id)
        if node is None:
            unknown.append(node_id)
        else:
            nodes.append(node)
    if unknown:
        raise SourceError(
            f"unknown node_ids (TrainingJob names, uids or checkpoint ids): {', '.join(unknown)}"
        )
    return nodes


def _job_node(tj: TrainingJob, node_id: str) -> Node:
    return Node(node_id, "job", tj, status_of(tj).current_iteration, metrics_of(tj).validation_accuracy)


def _find_node(jobs: list[TrainingJob], node_id: str) -> Node | None:
    job_part, _, ckpt_part = node_id.partition("/")
    for tj in jobs:
        if node_id in (name_of(tj), uid_of(tj), tj.metadata.uid):
            return _job_node(tj, node_id)
        if ckpt_part and job_part != name_of(tj):
            continue
        for ckpt in status_of(tj).checkpoints or []:
            if ckpt.id in (node_id, ckpt_part):
                return Node(node_id, "checkpoint", tj, ckpt.iteration, ckpt.validation_score)
    return None


NODE_COLUMNS = (
    Column("node_id", S, "node.id", pii=True),  # a job name (built from an agent id) or a checkpoint of one
    Column("node_kind", S, "node.kind"),
    JOB_NAME,
    AGENT_ID,
    Column("phase", S, "job.phase"),
    Column("iteration", N, "node.iteration"),
    Column("validation_score", F, "node.validation_score"),
    Column("cost_usd", D, "job.cost_usd"),
    Column("trajectories", N, "node.trajectories", group_size=True),
    Column("avg_reward", F, "node.avg_reward"),
    Column("success_rate", F, "node.success_rate"),
    Column("recent_avg_reward", F, "node.recent_avg_reward"),
    Column("recent_success_rate", F, "node.recent_success_rate"),
)


async def _node_row(ctx: SourceContext, node: Node, last: dict[str, GroupStats]) -> Row:
    iteration = (
        node.iteration
        if node.iteration is not None
        else last.get(uid_of(node.tj), GroupStats()).last_iteration
    )
    stats: Any = (0, None, None, None, None)
    if iteration is not None:
        stats = await sql.one(ctx.db, sql.node_stats(ctx.scope, uid_of(node.tj), int(iteration)))
    return (
        node.node_id,
        node.kind,
        name_of(node.tj),
        node.tj.spec.agent_id,
        phase_of(node.tj),
        iteration,
        node.validation_score,
        status_of(node.tj).cost_usd if node.kind == "job" else None,
        int(stats[0]),
        stats[1],
        stats[2],
        stats[3],
        stats[4],
    )


async def node_rows(ctx: SourceContext) -> Dataset:
    nodes = resolve_nodes(ctx.jobs(), ctx.config.node_ids)
    last = await job_stats(ctx)
    rows = [await _node_row(ctx, node, last) for node in nodes]
    chart = ChartSpec("Mean reward per node", "node_id", "avg_reward", "bar")
    return Dataset("Node comparison", NODE_COLUMNS, batched(rows), chart, estimated_rows=len(rows))


async def node_summary(ctx: SourceContext) -> Dataset:
    data = await node_rows(ctx)
    rows = [r async for batch in data.batches for r in batch]
    rewards = [r[9] for r in rows if r[9] is not None]
    rates = [r[10] for r in rows if r[10] is not None]
    return summary_dataset(
        "Node comparison summary",
        [
            ("nodes_compared", len(rows)),
            ("max_avg_reward", max(rewards, default=None)),
            ("min_avg_reward", min(rewards, default=None)),
            ("avg_reward_spread", (max(rewards) - min(rewards)) if rewards else None),
            ("max_success_rate", max(rates, default=None)),
            ("min_success_rate", min(rates, default=None)),
        ],
    )


SOURCE = Source(
    rows=node_rows,
    aggregated=no_aggregated_form("node_comparison"),
    summary=node_summary,
)
